// ByteTrack-style tracker: xyah Kalman filter (ByteTrack's constants), three association stages solved
// exactly, optional mask IoU between a track's last mask (shifted to its predicted centre) and a detection's.
#include "track.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace edgeseg {
namespace track {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kStdPos = 1.0 / 20.0;
constexpr double kStdVel = 1.0 / 160.0;

void check_unit(double v, const char* name) {
    if (!(v >= 0.0 && v <= 1.0)) throw std::invalid_argument(std::string(name) + " must be in [0, 1]");
}

void check_unit_open(double v, const char* name) {
    if (!(v >= 0.0 && v < 1.0)) throw std::invalid_argument(std::string(name) + " must be in [0, 1)");
}

// z = (cx, cy, w / h, h) of an xyxy box with positive width and height.
void xyah(const float* b, double z[4]) {
    const double x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
    const double w = x2 - x1, h = y2 - y1;
    z[0] = x1 + w / 2;
    z[1] = y1 + h / 2;
    z[2] = w / h;
    z[3] = h;
}

// Sum of the 16 bytes of acc (SWAR: bytes -> 16-bit lanes -> one sum).
inline std::int64_t sum16(const std::uint8_t* acc) {
    std::int64_t total = 0;
    for (int h = 0; h < 2; ++h) {
        std::uint64_t v;
        std::memcpy(&v, acc + 8 * h, 8);
        v = (v & 0x00FF00FF00FF00FFull) + ((v >> 8) & 0x00FF00FF00FF00FFull);
        total += static_cast<std::int64_t>((v * 0x0001000100010001ull) >> 48);
    }
    return total;
}

// Set pixels (nonzero = set) of a (rows x len) window, or of its intersection with a second one (c != nullptr).
// 16 byte-wide lanes (at most 255 blocks between sums) so that the loops vectorise.
#if defined(__GNUC__)
__attribute__((noinline))
#endif
std::int64_t count_pixels(const std::uint8_t* a, std::int64_t a_stride, const std::uint8_t* c, std::int64_t c_stride,
                          std::int64_t rows, std::int64_t len) {
    std::int64_t total = 0;
    for (std::int64_t y = 0; y < rows; ++y) {
        const std::uint8_t* pa = a + y * a_stride;
        const std::uint8_t* pc = c != nullptr ? c + y * c_stride : nullptr;
        std::int64_t k = 0;
        while (k + 16 <= len) {
            const std::int64_t blocks = std::min<std::int64_t>((len - k) / 16, 255);
            alignas(16) std::uint8_t acc[16] = {};
            if (pc != nullptr) {
                for (std::int64_t b = 0; b < blocks; ++b, k += 16)
                    for (int j = 0; j < 16; ++j)
                        acc[j] += std::min<std::uint8_t>(pa[k + j], 1) & std::min<std::uint8_t>(pc[k + j], 1);
            } else {
                for (std::int64_t b = 0; b < blocks; ++b, k += 16)
                    for (int j = 0; j < 16; ++j) acc[j] += std::min<std::uint8_t>(pa[k + j], 1);
            }
            total += sum16(acc);
        }
        if (pc != nullptr) {
            for (; k < len; ++k) total += (pa[k] != 0) & (pc[k] != 0);
        } else {
            for (; k < len; ++k) total += pa[k] != 0;
        }
    }
    return total;
}

}  // namespace

void check_config(const Config& c) {
    check_unit(c.high_thresh, "high_thresh");
    check_unit(c.low_thresh, "low_thresh");
    check_unit(c.new_track_thresh, "new_track_thresh");
    check_unit_open(c.match_thresh, "match_thresh");
    check_unit_open(c.low_match_thresh, "low_match_thresh");
    check_unit_open(c.tentative_match_thresh, "tentative_match_thresh");
    check_unit(c.mask_weight, "mask_weight");
    if (c.low_thresh > c.high_thresh) throw std::invalid_argument("low_thresh must be <= high_thresh");
    if (c.new_track_thresh < c.high_thresh) throw std::invalid_argument("new_track_thresh must be >= high_thresh");
    if (c.min_hits < 1) throw std::invalid_argument("min_hits must be >= 1");
    if (c.lost_frames < 0 || c.lost_frames > kMaxLostFrames)
        throw std::invalid_argument("lost_frames must be in [0, " + std::to_string(kMaxLostFrames) + "]");
}

void Snapshot::clear() {
    track_id.clear();
    hits.clear();
    age.clear();
    frames_since_update.clear();
    state.clear();
    class_id.clear();
    box.clear();
    score.clear();
}

// ---- linear assignment --------------------------------------------------------------------------------

void Assignment::solve(const double* cost, int n, int m, int* row_to_col) {
    std::fill(row_to_col, row_to_col + n, -1);
    if (n == 0 || m == 0) return;
    const double* a = cost;
    int R = n, C = m;
    const bool transposed = n > m;
    if (transposed) {  // the solver wants rows <= cols
        t_.resize(static_cast<size_t>(n) * m);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < m; ++j) t_[static_cast<size_t>(j) * n + i] = cost[static_cast<size_t>(i) * m + j];
        a = t_.data();
        R = m;
        C = n;
    }
    // Shortest augmenting paths with potentials (Kuhn-Munkres in the Jonker-Volgenant form); 1-based, column
    // 0 is the virtual start. Every row is assigned (R <= C); the caller keeps only negative entries, which
    // gives the best partial matching because untaken pairs and non-negative pairs cost 0 alike.
    u_.assign(R + 1, 0.0);
    v_.assign(C + 1, 0.0);
    p_.assign(C + 1, 0);
    way_.assign(C + 1, 0);
    minv_.resize(C + 1);
    used_.resize(C + 1);
    for (int i = 1; i <= R; ++i) {
        p_[0] = i;
        int j0 = 0;
        std::fill(minv_.begin(), minv_.end(), kInf);
        std::fill(used_.begin(), used_.end(), 0);
        do {
            used_[j0] = 1;
            const int i0 = p_[j0];
            const double* row = a + static_cast<size_t>(i0 - 1) * C;
            const double ui = u_[i0];
            double delta = kInf;
            int j1 = 0;
            for (int j = 1; j <= C; ++j) {
                if (used_[j]) continue;
                const double cur = row[j - 1] - ui - v_[j];
                if (cur < minv_[j]) {
                    minv_[j] = cur;
                    way_[j] = j0;
                }
                if (minv_[j] < delta) {
                    delta = minv_[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= C; ++j) {
                if (used_[j]) {
                    u_[p_[j]] += delta;
                    v_[j] -= delta;
                } else {
                    minv_[j] -= delta;
                }
            }
            j0 = j1;
        } while (p_[j0] != 0);
        do {
            const int j1 = way_[j0];
            p_[j0] = p_[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (int j = 1; j <= C; ++j) {
        const int i = p_[j];
        if (i == 0) continue;
        if (!(a[static_cast<size_t>(i - 1) * C + (j - 1)] < 0.0)) continue;
        if (transposed)
            row_to_col[j - 1] = i - 1;
        else
            row_to_col[i - 1] = j - 1;
    }
}

void linear_assignment(const double* cost, std::int64_t n, std::int64_t m, double limit, std::int64_t* row_to_col) {
    std::vector<double> c(static_cast<size_t>(n * m));
    for (std::int64_t k = 0; k < n * m; ++k) c[k] = cost[k] < limit ? cost[k] - limit : 0.0;
    std::vector<int> r(static_cast<size_t>(n));
    Assignment lap;
    lap.solve(c.data(), static_cast<int>(n), static_cast<int>(m), r.data());
    for (std::int64_t i = 0; i < n; ++i) row_to_col[i] = r[i];
}

// ---- Kalman filter ------------------------------------------------------------------------------------

ByteTracker::ByteTracker(const Config& cfg) : cfg_(cfg) { check_config(cfg_); }

void ByteTracker::reset() {
    tracks_.clear();
    next_id_ = 1;
}

void ByteTracker::initiate(Track& t, const double z[4]) const {
    const double h = z[3];
    const double sd[8] = {2 * kStdPos * h,  2 * kStdPos * h,  1e-2, 2 * kStdPos * h,
                          10 * kStdVel * h, 10 * kStdVel * h, 1e-5, 10 * kStdVel * h};
    for (int i = 0; i < 4; ++i) {
        t.mean[i] = z[i];
        t.mean[i + 4] = 0.0;
    }
    std::fill(t.cov, t.cov + 64, 0.0);
    for (int i = 0; i < 8; ++i) t.cov[i * 9] = sd[i] * sd[i];
}

void ByteTracker::predict(Track& t) const {
    double* m = t.mean;
    double* P = t.cov;
    const double h = m[3];
    const double qp = kStdPos * h, qv = kStdVel * h;
    // Q uses the height before the motion step (ByteTrack's order).
    const double q[8] = {qp * qp, qp * qp, 1e-4, qp * qp, qv * qv, qv * qv, 1e-10, qv * qv};
    for (int i = 0; i < 4; ++i) m[i] += m[i + 4];
    // F P F^T with F = [[I, I], [0, I]]: blocks [[A, B], [B', C]] -> [[A + B + B' + C, B + C], [B' + C, C]].
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
            const double a = P[i * 8 + j], b = P[i * 8 + j + 4], bt = P[(i + 4) * 8 + j], c = P[(i + 4) * 8 + j + 4];
            P[i * 8 + j] = a + b + bt + c;
            P[i * 8 + j + 4] = b + c;
            P[(i + 4) * 8 + j] = bt + c;
        }
    }
    for (int i = 0; i < 8; ++i) P[i * 9] += q[i];
}

void ByteTracker::kalman_update(Track& t, const double z[4]) const {
    double* m = t.mean;
    double* P = t.cov;
    const double h = m[3];
    const double rp = kStdPos * h;
    const double r[4] = {rp * rp, rp * rp, 1e-2, rp * rp};
    // S = H P H^T + R (top-left block), L L^T = S.
    double L[4][4] = {};
    double S[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) S[i][j] = P[i * 8 + j] + (i == j ? r[i] : 0.0);
    for (int j = 0; j < 4; ++j) {
        double d = S[j][j];
        for (int k = 0; k < j; ++k) d -= L[j][k] * L[j][k];
        if (!(d > 0.0) || !std::isfinite(d)) {  // not positive definite (degenerate state): start over from z
            initiate(t, z);
            return;
        }
        L[j][j] = std::sqrt(d);
        for (int i = j + 1; i < 4; ++i) {
            double s = S[i][j];
            for (int k = 0; k < j; ++k) s -= L[i][k] * L[j][k];
            L[i][j] = s / L[j][j];
        }
    }
    // K^T = S^-1 (H P) (4 x 8): forward then back substitution, all 8 columns at once.
    double inv[4];
    for (int i = 0; i < 4; ++i) inv[i] = 1.0 / L[i][i];
    double Y[4][8], Kt[4][8];
    for (int i = 0; i < 4; ++i) {
        for (int c = 0; c < 8; ++c) {
            double s = P[i * 8 + c];
            for (int k = 0; k < i; ++k) s -= L[i][k] * Y[k][c];
            Y[i][c] = s * inv[i];
        }
    }
    for (int i = 3; i >= 0; --i) {
        for (int c = 0; c < 8; ++c) {
            double s = Y[i][c];
            for (int k = i + 1; k < 4; ++k) s -= L[k][i] * Kt[k][c];
            Kt[i][c] = s * inv[i];
        }
    }
    double innov[4];
    for (int i = 0; i < 4; ++i) innov[i] = z[i] - m[i];
    double HP[4][8];  // rows 0..3 of the old P
    for (int i = 0; i < 4; ++i)
        for (int c = 0; c < 8; ++c) HP[i][c] = P[i * 8 + c];
    for (int c = 0; c < 8; ++c) {
        double s = 0.0;
        for (int k = 0; k < 4; ++k) s += Kt[k][c] * innov[k];
        m[c] += s;
    }
    // P -= K S K^T = K (H P).
    for (int i = 0; i < 8; ++i) {
        for (int j = 0; j < 8; ++j) {
            double s = 0.0;
            for (int k = 0; k < 4; ++k) s += Kt[k][i] * HP[k][j];
            P[i * 8 + j] -= s;
        }
    }
}

// ---- association --------------------------------------------------------------------------------------

std::int64_t ByteTracker::det_area(std::int64_t d) const {
    std::int64_t& a = det_area_[d];
    if (a < 0) {
        a = count_pixels(masks_->data + masks_->offsets[d], 0, nullptr, 0, 1,
                         masks_->offsets[d + 1] - masks_->offsets[d]);
    }
    return a;
}

double ByteTracker::similarity(const Track& t, std::int64_t d) const {
    if (cfg_.class_consistent && t.cls != cls_[d]) return -1.0;
    const float* b = boxes_ + d * 4;
    const double bx1 = b[0], by1 = b[1], bx2 = b[2], by2 = b[3];
    const double* p = t.pbox;
    const double iw = std::min(p[2], bx2) - std::max(p[0], bx1);
    const double ih = std::min(p[3], by2) - std::max(p[1], by1);
    if (!(iw > 0.0 && ih > 0.0)) return 0.0;
    const double inter = iw * ih;
    const double uni = (p[2] - p[0]) * (p[3] - p[1]) + (bx2 - bx1) * (by2 - by1) - inter;
    if (!(uni > 0.0)) return 0.0;
    const double iou = inter / uni;
    if (masks_ == nullptr || !t.has_mask) return iou;

    // Mask IoU: the track's last mask shifted by the rounded motion of its centre, counted over the overlap.
    double miou = 0.0;
    const double ddx = t.mean[0] - t.cx, ddy = t.mean[1] - t.cy;
    if (std::fabs(ddx) < 1e9 && std::fabs(ddy) < 1e9) {
        const std::int64_t dx = static_cast<std::int64_t>(std::round(ddx));
        const std::int64_t dy = static_cast<std::int64_t>(std::round(ddy));
        const std::int64_t tx0 = t.rect[0] + dx, ty0 = t.rect[1] + dy, tx1 = t.rect[2] + dx, ty1 = t.rect[3] + dy;
        const std::int32_t* r = masks_->rects + d * 4;
        const std::int64_t ox0 = std::max<std::int64_t>(tx0, r[0]), ox1 = std::min<std::int64_t>(tx1, r[2]);
        const std::int64_t oy0 = std::max<std::int64_t>(ty0, r[1]), oy1 = std::min<std::int64_t>(ty1, r[3]);
        std::int64_t inter_px = 0;
        if (ox0 < ox1 && oy0 < oy1) {
            const std::int64_t tw = tx1 - tx0, dw = r[2] - r[0];
            const std::uint8_t* a = t.bits.data() + (oy0 - ty0) * tw + (ox0 - tx0);
            const std::uint8_t* c = masks_->data + masks_->offsets[d] + (oy0 - r[1]) * dw + (ox0 - r[0]);
            inter_px = count_pixels(a, tw, c, dw, oy1 - oy0, ox1 - ox0);
        }
        const std::int64_t uni_px = t.area + det_area(d) - inter_px;
        if (uni_px > 0) miou = static_cast<double>(inter_px) / static_cast<double>(uni_px);
    }
    const double w = cfg_.mask_weight;
    return (1.0 - w) * iou + w * miou;
}

void ByteTracker::associate(const std::vector<int>& rows, const std::vector<int>& cols, double thresh) {
    const int n = static_cast<int>(rows.size()), m = static_cast<int>(cols.size());
    row_match_.assign(n, -1);
    if (n == 0 || m == 0) return;
    cost_.resize(static_cast<size_t>(n) * m);
    bool any = false;
    for (int i = 0; i < n; ++i) {
        const Track& t = tracks_[rows[i]];
        for (int j = 0; j < m; ++j) {
            const double s = similarity(t, cols[j]);
            const bool ok = s > thresh;
            cost_[static_cast<size_t>(i) * m + j] = ok ? thresh - s : 0.0;
            any |= ok;
        }
    }
    if (!any) return;
    lap_.solve(cost_.data(), n, m, row_match_.data());
    for (int i = 0; i < n; ++i)
        if (row_match_[i] >= 0) row_match_[i] = cols[row_match_[i]];
}

void ByteTracker::apply(Track& t, std::int64_t d) {
    double z[4];
    xyah(boxes_ + d * 4, z);
    kalman_update(t, z);
    t.fsu = 0;
    t.hits += 1;
    t.score = scores_[d];
    if (!cfg_.class_consistent) t.cls = cls_[d];
    t.cx = z[0];
    t.cy = z[1];
    if (masks_ != nullptr) {
        const std::int32_t* r = masks_->rects + d * 4;
        std::copy(r, r + 4, t.rect);
        const std::uint8_t* p = masks_->data + masks_->offsets[d];
        t.bits.assign(p, masks_->data + masks_->offsets[d + 1]);
        t.area = det_area(d);
        t.has_mask = true;
    } else {
        t.has_mask = false;
    }
}

void ByteTracker::update(const float* boxes, const float* scores, const std::int32_t* cls, std::int64_t n,
                         const MaskView* masks, std::int64_t steps, std::int64_t* ids) {
    boxes_ = boxes;
    scores_ = scores;
    cls_ = cls;
    masks_ = (masks != nullptr && cfg_.mask_weight > 0.0) ? masks : nullptr;
    if (masks_ != nullptr) det_area_.assign(n, -1);
    det_track_.assign(n, -1);
    std::fill(ids, ids + n, std::int64_t{-1});

    // 1. predict (at most lost_frames + 1 steps: a track unseen longer than that is past its lost buffer)
    const std::int64_t npred = std::min(steps, cfg_.lost_frames + 1);
    for (Track& t : tracks_) {
        for (std::int64_t k = 0; k < npred; ++k) {
            if (t.state == kLost) t.mean[7] = 0.0;
            predict(t);
        }
        t.fsu += steps;
        t.age += steps;
        const double w = t.mean[2] * t.mean[3], h = t.mean[3];
        t.pbox[0] = t.mean[0] - w / 2;
        t.pbox[1] = t.mean[1] - h / 2;
        t.pbox[2] = t.mean[0] + w / 2;
        t.pbox[3] = t.mean[1] + h / 2;
    }
    const int ntracks = static_cast<int>(tracks_.size());
    track_matched_.assign(ntracks, 0);

    // detections by score band (zero-size boxes never take part)
    std::vector<int>& high = cols_;
    high.clear();
    low_.clear();
    for (std::int64_t d = 0; d < n; ++d) {
        const float* b = boxes + d * 4;
        if (!(b[2] > b[0] && b[3] > b[1])) continue;
        if (scores[d] >= cfg_.high_thresh)
            high.push_back(static_cast<int>(d));
        else if (scores[d] >= cfg_.low_thresh)
            low_.push_back(static_cast<int>(d));
    }

    // 2. high detections x confirmed tracks (tracked or lost)
    rows_.clear();
    for (int i = 0; i < ntracks; ++i)
        if (tracks_[i].state != kTentative) rows_.push_back(i);
    associate(rows_, high, cfg_.match_thresh);
    for (size_t r = 0; r < rows_.size(); ++r) {
        const int d = row_match_[r];
        if (d < 0) continue;
        Track& t = tracks_[rows_[r]];
        apply(t, d);
        t.state = kTracked;
        track_matched_[rows_[r]] = 1;
        det_track_[d] = rows_[r];
    }

    // 3. low detections x the confirmed tracks left (tracked and lost: an occluded object often comes back with a
    // low score); the tracked ones left become lost
    rows2_.clear();
    for (int i : rows_)
        if (!track_matched_[i]) rows2_.push_back(i);
    associate(rows2_, low_, cfg_.low_match_thresh);
    for (size_t r = 0; r < rows2_.size(); ++r) {
        const int d = row_match_[r];
        Track& t = tracks_[rows2_[r]];
        if (d < 0) {
            t.state = kLost;
            continue;
        }
        apply(t, d);
        t.state = kTracked;
        track_matched_[rows2_[r]] = 1;
        det_track_[d] = rows2_[r];
    }

    // 4. high detections left x tentative tracks; confirmation hands out the next id
    rows_.clear();
    for (int i = 0; i < ntracks; ++i)
        if (tracks_[i].state == kTentative) rows_.push_back(i);
    rest_.clear();
    for (int d : high)
        if (det_track_[d] < 0) rest_.push_back(d);
    associate(rows_, rest_, cfg_.tentative_match_thresh);
    for (size_t r = 0; r < rows_.size(); ++r) {
        const int d = row_match_[r];
        if (d < 0) continue;
        Track& t = tracks_[rows_[r]];
        apply(t, d);
        if (t.hits >= cfg_.min_hits) {
            t.state = kTracked;
            t.id = next_id_++;
        }
        track_matched_[rows_[r]] = 1;
        det_track_[d] = rows_[r];
    }

    // 5. births, in detection order
    for (int d : rest_) {
        if (det_track_[d] >= 0 || scores[d] < cfg_.new_track_thresh) continue;
        tracks_.emplace_back();
        Track& t = tracks_.back();
        double z[4];
        xyah(boxes + d * 4, z);
        initiate(t, z);
        t.cls = cls[d];
        t.score = scores[d];
        t.hits = 1;
        t.age = 0;
        t.fsu = 0;
        t.cx = z[0];
        t.cy = z[1];
        if (masks_ != nullptr) {
            const std::int32_t* r = masks_->rects + static_cast<std::int64_t>(d) * 4;
            std::copy(r, r + 4, t.rect);
            t.bits.assign(masks_->data + masks_->offsets[d], masks_->data + masks_->offsets[d + 1]);
            t.area = det_area(d);
            t.has_mask = true;
        }
        if (cfg_.min_hits <= 1) {
            t.state = kTracked;
            t.id = next_id_++;
        } else {
            t.state = kTentative;
        }
        det_track_[d] = static_cast<int>(tracks_.size()) - 1;
    }
    for (std::int64_t d = 0; d < n; ++d)
        if (det_track_[d] >= 0) ids[d] = tracks_[det_track_[d]].id > 0 ? tracks_[det_track_[d]].id : -1;

    // 6. drop unmatched tentative tracks and lost tracks past their buffer
    int k = 0;
    const int total = static_cast<int>(tracks_.size());
    for (int i = 0; i < total; ++i) {
        Track& t = tracks_[i];
        const bool drop = (i < ntracks && t.state == kTentative && !track_matched_[i]) ||
                          (t.state == kLost && t.fsu > cfg_.lost_frames);
        if (drop) continue;
        if (k != i) tracks_[k] = std::move(t);
        ++k;
    }
    tracks_.resize(k);
    masks_ = nullptr;
}

void ByteTracker::snapshot(Snapshot& out) const {
    out.clear();
    for (const Track& t : tracks_) {
        out.track_id.push_back(t.id);
        out.state.push_back(t.state);
        out.class_id.push_back(t.cls);
        const double w = t.mean[2] * t.mean[3], h = t.mean[3];
        out.box.push_back(t.mean[0] - w / 2);
        out.box.push_back(t.mean[1] - h / 2);
        out.box.push_back(t.mean[0] + w / 2);
        out.box.push_back(t.mean[1] + h / 2);
        out.score.push_back(t.score);
        out.hits.push_back(t.hits);
        out.age.push_back(t.age);
        out.frames_since_update.push_back(t.fsu);
    }
}

}  // namespace track
}  // namespace edgeseg
