// Candidate decoding of a YOLOv8/YOLO11-seg head output ([C,N] or [N,C], C = 4 + nc + nm).
#pragma once
#include <cstdint>
#include <vector>

namespace edgeseg {

struct DecodeOptions {
    int nc = 80;
    float conf = 0.25f;
    bool multi_label = false;
    std::int64_t max_nms = 30000;
    const std::uint8_t* keep = nullptr;  // optional per-class keep flags (length nc); nullptr keeps all
    float sx = 1.f, sy = 1.f;            // box scale applied after cxcywh -> xyxy
};

struct DecodeOutput {
    std::vector<float> boxes;  // k*4 xyxy
    std::vector<float> scores;
    std::vector<std::int32_t> class_ids;
    std::vector<std::int32_t> anchors;
    std::vector<float> coefs;  // k*nm
    std::int64_t nonfinite = 0;
};

// `data` holds C*N floats, row-major [C,N] when `cn` else [N,C]. Requires C >= 4 + nc, nc >= 1.
// Pure computation (no Python): safe to call with the GIL released.
void decode_candidates(const float* data, std::int64_t C, std::int64_t N, bool cn, const DecodeOptions& opt,
                       DecodeOutput& out);

}  // namespace edgeseg
