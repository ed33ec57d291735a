// libFuzzer harness: nms_greedy (class-aware or not, huge and degenerate boxes, any IoU threshold) and
// topk_pairs (any anchor ids, ties, k larger than the input).
#include "fuzz_input.hpp"
#include "nms.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::int64_t n = in.range(0, 64);
    const float iou = in.finite();
    const std::int64_t max_det = in.range(0, 80);
    const bool classes = in.flag();
    std::vector<float> boxes = in.values(std::size_t(n * 4), true), scores = in.values(std::size_t(n), true);
    std::vector<std::int32_t> cls(static_cast<std::size_t>(n));
    std::vector<std::int32_t> anchors(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        cls[std::size_t(i)] = std::int32_t(in.range(-2, 3));
        anchors[std::size_t(i)] = in.flag() ? in.raw<std::int32_t>() : std::int32_t(in.range(0, 8));
    }
    std::vector<std::int64_t> keep;
    nms_greedy(boxes.data(), scores.data(), classes ? cls.data() : nullptr, n, iou, max_det, keep);
    keep.clear();
    const std::int64_t k = in.flag() ? in.range(1, 100) : std::int64_t(1) << in.range(0, 62);
    topk_pairs(anchors.data(), scores.data(), n, k, keep);
    return 0;
}
