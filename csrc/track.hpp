// Multi-object tracking by detection (ByteTrack-style two-stage association, xyah Kalman filter,
// optional mask IoU in the similarity). Pure computation: no Python, safe with the GIL released.
// One ByteTracker is used by one thread at a time (the binding serialises calls with a mutex).
#pragma once
#include <cstdint>
#include <vector>

namespace edgeseg {
namespace track {

struct Config {
    double high_thresh = 0.5;             // score >= this: "high" detection
    double low_thresh = 0.1;              // score < this: ignored; [low, high): "low" detection
    double new_track_thresh = 0.6;        // an unmatched high detection >= this starts a tentative track
    double match_thresh = 0.2;            // stage 1 (high x confirmed): a pair matches only if sim > this
    double low_match_thresh = 0.3;        // stage 2 (low x tracked or lost)
    double tentative_match_thresh = 0.3;  // stage 3 (remaining high x tentative)
    std::int64_t min_hits = 2;            // matched updates in a row (birth included) to confirm
    std::int64_t lost_frames = 30;        // a lost track is dropped when frames since its last match > this
    double mask_weight = 0.0;             // sim = (1 - w) box_iou + w mask_iou when both have masks
    bool class_consistent = true;         // pairs of different class never match; a track keeps its class
};

constexpr std::int64_t kMaxLostFrames = 1000000;
constexpr std::int64_t kMaxSteps = 2147483647;

// Throws std::invalid_argument naming the bad field.
void check_config(const Config& c);

enum State : std::int32_t { kTentative = 0, kTracked = 1, kLost = 2 };

// Compact masks of one update's detections (validated by the caller): rects n*4 x0, y0, x1, y1 (exclusive),
// bitmaps row-major in data at offsets[i] (nonzero = foreground).
struct MaskView {
    const std::int32_t* rects = nullptr;
    const std::uint8_t* data = nullptr;
    const std::int64_t* offsets = nullptr;
};

// Live tracks, one entry per track in creation order.
struct Snapshot {
    std::vector<std::int64_t> track_id, hits, age, frames_since_update;
    std::vector<std::int32_t> state, class_id;
    std::vector<double> box, score;  // box: k*4 xyxy of the Kalman mean
    void clear();
};

// Exact linear assignment (shortest augmenting paths with potentials) on an n x m cost matrix in which only
// negative entries are worth taking: minimises the sum of the taken entries, every taken entry < 0.
// row_to_col[i] = j or -1. Scratch is reused between calls.
class Assignment {
public:
    void solve(const double* cost, int n, int m, int* row_to_col);

private:
    std::vector<double> t_, u_, v_, minv_;
    std::vector<int> p_, way_, col_;
    std::vector<char> used_;
};

// lap.lapjv(cost, extend_cost=True, cost_limit=limit) semantics: pairs with cost < limit may be taken;
// minimises sum(cost - limit) over taken pairs. cost: n*m row-major, finite.
void linear_assignment(const double* cost, std::int64_t n, std::int64_t m, double limit, std::int64_t* row_to_col);

class ByteTracker {
public:
    explicit ByteTracker(const Config& cfg);

    // boxes n*4 xyxy, scores n, cls n (finite, validated by the caller), masks or nullptr, steps >= 1.
    // Writes n ids (the external id of the confirmed track each detection matched or started, else -1).
    void update(const float* boxes, const float* scores, const std::int32_t* cls, std::int64_t n,
                const MaskView* masks, std::int64_t steps, std::int64_t* ids);
    void reset();
    void snapshot(Snapshot& out) const;
    const Config& config() const { return cfg_; }

private:
    struct Track {
        double mean[8];
        double cov[64];
        std::int64_t id = 0;  // 0 while tentative
        std::int32_t state = kTentative;
        std::int32_t cls = 0;
        double score = 0;
        std::int64_t hits = 0, age = 0, fsu = 0;
        double cx = 0, cy = 0;  // centre of the last matched detection's box
        bool has_mask = false;
        std::int32_t rect[4] = {0, 0, 0, 0};
        std::int64_t area = 0;
        std::vector<std::uint8_t> bits;
        double pbox[4];  // predicted xyxy (this update)
    };

    void predict(Track& t) const;
    void kalman_update(Track& t, const double z[4]) const;
    void initiate(Track& t, const double z[4]) const;
    double similarity(const Track& t, std::int64_t d) const;
    std::int64_t det_area(std::int64_t d) const;
    void apply(Track& t, std::int64_t d);
    // Matches rows (track indices) against cols (detection indices); fills match_row_ (track index per row
    // matched, or -1) and marks matched detections in det_track_.
    void associate(const std::vector<int>& rows, const std::vector<int>& cols, double thresh);

    Config cfg_;
    std::vector<Track> tracks_;
    std::int64_t next_id_ = 1;

    // per-update inputs and scratch (reused)
    const float* boxes_ = nullptr;
    const float* scores_ = nullptr;
    const std::int32_t* cls_ = nullptr;
    const MaskView* masks_ = nullptr;
    mutable std::vector<std::int64_t> det_area_;
    std::vector<int> det_track_;  // track index matched by each detection, -1
    std::vector<int> rows_, rows2_, cols_, low_, rest_, row_match_;
    std::vector<double> cost_;
    std::vector<char> track_matched_;
    Assignment lap_;
};

}  // namespace track
}  // namespace edgeseg
