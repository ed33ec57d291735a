// Greedy NMS over score-sorted structure-of-arrays boxes; the suppression sweep is branch-free.
#include "nms.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <utility>

namespace edgeseg {
namespace {

constexpr float kTiny = std::numeric_limits<float>::denorm_min();

struct Scratch {
    std::vector<std::int64_t> order;
    std::vector<float> x1, y1, x2, y2, area;
    std::vector<std::int32_t> cls, sup;
};

Scratch& scratch() {
    thread_local Scratch s;  // reused across calls on the same thread
    return s;
}

}  // namespace

void nms_greedy(const float* boxes, const float* scores, const std::int32_t* cls, std::int64_t n, float iou_thr,
                std::int64_t max_det, std::vector<std::int64_t>& keep) {
    keep.clear();
    if (n <= 0 || max_det <= 0) return;
    Scratch& s = scratch();
    s.order.resize(n);
    std::iota(s.order.begin(), s.order.end(), std::int64_t{0});
    std::stable_sort(s.order.begin(), s.order.end(),
                     [scores](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
    s.x1.resize(n);
    s.y1.resize(n);
    s.x2.resize(n);
    s.y2.resize(n);
    s.area.resize(n);
    s.cls.resize(n);
    s.sup.assign(n, 0);
    for (std::int64_t k = 0; k < n; ++k) {
        const float* b = boxes + s.order[k] * 4;
        s.x1[k] = b[0];
        s.y1[k] = b[1];
        s.x2[k] = b[2];
        s.y2[k] = b[3];
        s.area[k] = (b[2] - b[0]) * (b[3] - b[1]);
        s.cls[k] = cls ? cls[s.order[k]] : 0;
    }
    const float* X1 = s.x1.data();
    const float* Y1 = s.y1.data();
    const float* X2 = s.x2.data();
    const float* Y2 = s.y2.data();
    const float* A = s.area.data();
    const std::int32_t* K = s.cls.data();
    std::int32_t* sup = s.sup.data();
    for (std::int64_t i = 0; i < n; ++i) {
        if (sup[i]) continue;
        keep.push_back(s.order[i]);
        if (static_cast<std::int64_t>(keep.size()) >= max_det) break;
        const float ix1 = X1[i], iy1 = Y1[i], ix2 = X2[i], iy2 = Y2[i], ia = A[i];
        const std::int32_t ic = K[i];
        for (std::int64_t j = i + 1; j < n; ++j) {
            const float w = std::max(0.f, std::min(ix2, X2[j]) - std::max(ix1, X1[j]));
            const float h = std::max(0.f, std::min(iy2, Y2[j]) - std::max(iy1, Y1[j]));
            const float inter = w * h;
            const float uni = ia + A[j] - inter;
            // Exact inter/uni for every uni > 0 (uni >= denorm_min); pairs with uni <= 0 (zero-area boxes)
            // have IoU 0 and never suppress. Written with masks so the loop vectorises.
            const float iou = inter / std::max(uni, kTiny);
            const std::int32_t m = -static_cast<std::int32_t>(uni > 0.f) & -static_cast<std::int32_t>(iou > iou_thr) &
                                   -static_cast<std::int32_t>(K[j] == ic);
            sup[j] |= m & 1;
        }
    }
}

}  // namespace edgeseg

namespace edgeseg {

void topk_pairs(const std::int32_t* anchors, const float* scores, std::int64_t n, std::int64_t k,
                std::vector<std::int64_t>& keep) {
    keep.clear();
    if (n <= 0 || k <= 0) return;
    // best score per anchor, anchors in order of first appearance
    std::unordered_map<std::int32_t, std::size_t> slot;
    slot.reserve(static_cast<std::size_t>(n));
    std::vector<std::pair<std::int32_t, float>> best;  // (anchor, best score)
    for (std::int64_t i = 0; i < n; ++i) {
        auto it = slot.find(anchors[i]);
        if (it == slot.end()) {
            slot.emplace(anchors[i], best.size());
            best.emplace_back(anchors[i], scores[i]);
        } else if (scores[i] > best[it->second].second) {
            best[it->second].second = scores[i];
        }
    }
    std::vector<std::uint8_t> kept(best.size(), 1);
    if (static_cast<std::int64_t>(best.size()) > k) {
        std::vector<std::size_t> order(best.size());
        for (std::size_t j = 0; j < order.size(); ++j) order[j] = j;
        std::nth_element(order.begin(), order.begin() + k, order.end(), [&](std::size_t a, std::size_t b) {
            if (best[a].second != best[b].second) return best[a].second > best[b].second;
            return best[a].first < best[b].first;
        });
        std::fill(kept.begin(), kept.end(), 0);
        for (std::int64_t j = 0; j < k; ++j) kept[order[j]] = 1;
    }
    std::vector<std::int64_t> pairs;
    pairs.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i)
        if (kept[slot[anchors[i]]]) pairs.push_back(i);
    std::stable_sort(pairs.begin(), pairs.end(), [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
    if (static_cast<std::int64_t>(pairs.size()) > k) pairs.resize(static_cast<std::size_t>(k));
    keep = std::move(pairs);
}

}  // namespace edgeseg
