// Decoding of split-output YOLOv8/YOLO11-seg heads: per level the raw box-distribution logits
// (4*reg_max channels), class logits (nc) and mask coefficients (nm), float or int8/uint8 with a
// scale and zero point each. Class logits are thresholded in their own (quantised) domain; only
// candidates are dequantised and decoded (DFL expectation, anchors at cell centres, stride, sigmoid).
// reg_max 1 (YOLO26, no DFL): the 4 box channels are the distances themselves.
#pragma once
#include <cstdint>
#include <vector>

#include "decode.hpp"

namespace edgeseg {

enum class SplitDType { F32 = 0, I8 = 1, U8 = 2 };

struct QTensor {
    const void* data = nullptr;
    float scale = 1.f;       // real = (q - zero_point) * scale; 1/0 for float tensors
    std::int32_t zero_point = 0;
};

struct SplitLevel {
    QTensor box, cls, coef;
    std::int64_t h = 0, w = 0;
    float stride = 8.f;
};

struct SplitOptions {
    int nc = 80;
    int nm = 32;
    int reg_max = 16;
    SplitDType dtype = SplitDType::F32;
    bool cn = false;          // false: each tensor [H*W, C] (NHWC); true: [C, H*W] (NCHW)
    float conf = 0.25f;       // on the sigmoid score
    bool multi_label = false;
    std::int64_t max_nms = 30000;
    const std::uint8_t* keep = nullptr;  // per-class keep flags (length nc) or nullptr
};

// Candidates (same contract as decode_candidates: boxes xyxy in input pixels, anchors indexed level
// by level, row-major, as in the single-output head). Pure computation: call without the GIL.
void decode_split_candidates(const std::vector<SplitLevel>& levels, const SplitOptions& opt, DecodeOutput& out);

// Every anchor decoded into `out`, row-major [4 + nc + nm, N]: cx, cy, w, h (input pixels), sigmoid
// class scores, mask coefficients: the single-output head's layout.
void decode_split_dense(const std::vector<SplitLevel>& levels, const SplitOptions& opt, float* out);

// The integer class-logit threshold used for quantised inputs: a class passes when q > threshold.
// logit(conf) / scale + zero_point, floored (conf <= 0: below every q; conf >= 1: above every q).
double quantised_threshold(double conf, double scale, double zero_point);

}  // namespace edgeseg
