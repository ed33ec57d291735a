// libFuzzer harness: ByteTracker (any configuration check_config accepts, sequences of updates with huge,
// degenerate and overlapping boxes, masks or none, frame gaps) and linear_assignment.
#include <stdexcept>

#include "fuzz_input.hpp"
#include "track.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    track::Config c;
    if (in.flag()) {
        c.high_thresh = in.finite();
        c.low_thresh = in.finite();
        c.new_track_thresh = in.finite();
        c.match_thresh = in.finite();
        c.low_match_thresh = in.finite();
        c.tentative_match_thresh = in.finite();
        c.min_hits = in.range(-1, 5);
        c.lost_frames = in.flag() ? in.range(-1, 40) : track::kMaxLostFrames;
        c.mask_weight = in.finite();
        c.class_consistent = in.flag();
    }
    try {
        track::check_config(c);
    } catch (const std::invalid_argument&) {
        return 0;  // documented: a bad configuration is rejected, naming the field
    }
    track::ByteTracker tracker(c);
    const int updates = int(in.range(1, 10));
    std::vector<std::int64_t> ids;
    track::Snapshot snap;
    for (int u = 0; u < updates; ++u) {
        const std::int64_t n = in.range(0, 12);
        std::vector<float> boxes(static_cast<std::size_t>(n * 4));
        for (std::int64_t i = 0; i < n; ++i) {
            // A box near the previous one (so tracks match), anywhere, or degenerate.
            const float x = float(in.range(0, 200)), y = float(in.range(0, 200));
            const float bw = in.flag() ? in.finite() : float(in.range(0, 60));
            const float bh = in.flag() ? in.finite() : float(in.range(0, 60));
            boxes[std::size_t(i * 4)] = x;
            boxes[std::size_t(i * 4 + 1)] = y;
            boxes[std::size_t(i * 4 + 2)] = x + bw;
            boxes[std::size_t(i * 4 + 3)] = y + bh;
        }
        std::vector<float> scores(static_cast<std::size_t>(n));
        for (auto& s : scores) s = in.flag() ? in.finite() : float(in.range(0, 100)) / 100.f;
        std::vector<std::int32_t> cls(static_cast<std::size_t>(n));
        for (auto& k : cls) k = std::int32_t(in.range(0, 2));
        track::MaskView view;
        std::vector<std::int32_t> rects;
        std::vector<std::uint8_t> bits;
        std::vector<std::int64_t> offsets{0};
        const bool masks = in.flag();
        if (masks) {
            for (std::int64_t i = 0; i < n; ++i) {
                const std::int32_t x0 = std::int32_t(in.range(-10, 200)), y0 = std::int32_t(in.range(-10, 200));
                const std::int32_t mw = std::int32_t(in.range(0, 12)), mh = std::int32_t(in.range(0, 12));
                rects.insert(rects.end(), {x0, y0, x0 + mw, y0 + mh});
                const std::vector<std::uint8_t> b = in.bytes(std::size_t(mw) * mh);
                bits.insert(bits.end(), b.begin(), b.end());
                offsets.push_back(offsets.back() + std::int64_t(mw) * mh);
            }
            rects.push_back(0);
            bits.push_back(0);
            view.rects = rects.data();
            view.data = bits.data();
            view.offsets = offsets.data();
        }
        ids.assign(std::size_t(n) + 1, 0);
        const std::int64_t steps = in.flag() ? in.range(1, 3) : in.range(1, track::kMaxSteps);
        tracker.update(boxes.data(), scores.data(), cls.data(), n, masks ? &view : nullptr, steps, ids.data());
        tracker.snapshot(snap);
        if (in.raw<std::uint8_t>() == 0) tracker.reset();
    }
    // The assignment on its own: any finite costs, any limit.
    const std::int64_t rows = in.range(0, 8), cols = in.range(0, 8);
    const std::vector<float> cf = in.values(std::size_t(rows * cols), true);
    const std::vector<double> cost(cf.begin(), cf.end());
    std::vector<std::int64_t> match(std::size_t(rows) + 1);
    track::linear_assignment(cost.data(), rows, cols, double(in.finite()), match.data());
    return 0;
}
