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

namespace edgeseg {

// YOLO26's one-to-one selection (its in-graph top-k, done here where an export ends before it), no NMS.
// Input: n (anchor, class) pairs with their scores (any order, every pair of an anchor counted). The k anchors
// with the highest best score are kept (ties: lower anchor index first), then the k highest-scoring pairs of
// those anchors (ties: earlier input first). Appends the input indices of those pairs to `keep`, by score
// descending. All scores must be finite. Pure computation: safe without the GIL.
void topk_pairs(const std::int32_t* anchors, const float* scores, std::int64_t n, std::int64_t k,
                std::vector<std::int64_t>& keep);

}  // namespace edgeseg
