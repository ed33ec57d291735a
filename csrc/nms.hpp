// Greedy non-maximum suppression (torchvision.ops.nms semantics, optionally class-aware).
#pragma once
#include <cstdint>
#include <vector>

namespace edgeseg {

// boxes: n*4 xyxy; scores: n; cls: n class ids or nullptr (one class). All values must be finite.
// Appends kept input indices to `keep` in score-descending order (stable), at most max_det of them.
// Pure computation (no Python): safe to call with the GIL released.
void nms_greedy(const float* boxes, const float* scores, const std::int32_t* cls, std::int64_t n, float iou_thr,
                std::int64_t max_det, std::vector<std::int64_t>& keep);

}  // namespace edgeseg
