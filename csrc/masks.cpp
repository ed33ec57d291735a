// Region-only instance masks.
//
// Both entry points reduce to the same kernel: for every output pixel of an instance's
// rectangle we know (from per-axis tables) the two proto cells bilinear upsampling reads along
// x and along y and their weights, exactly as torch's upsample_bilinear2d (align_corners=False)
// computes them for the whole map. Per instance we evaluate coefficient . prototype only on the
// proto patch those pixels read, interpolate the patch rows along x once, then blend two of
// those rows per output row and threshold at 0.
#include "masks.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

namespace edgeseg {
namespace masks {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

// Sampling table along one output axis: proto cell indices (absolute) and weights.
struct Axis {
    std::vector<int32_t> i0, i1;
    std::vector<float> w0, w1;
    explicit Axis(int n) : i0(n), i1(n), w0(n), w1(n) {}
};

// torch upsample_bilinear2d source index for output index d (align_corners=False, float math).
inline void source_index(float scale, int64_t d, int in_size, int32_t& i0, int32_t& i1, float& w0, float& w1) {
    // torch's AVX2/CUDA kernels evaluate this as a fused multiply-add; match their coordinates.
    float src = std::fma(scale, static_cast<float>(d) + 0.5f, -0.5f);
    if (src < 0.f) src = 0.f;
    int64_t idx = static_cast<int64_t>(std::floor(src));
    if (idx > in_size - 1) idx = in_size - 1;
    float lam = src - static_cast<float>(idx);
    lam = std::min(std::max(lam, 0.f), 1.f);
    i0 = static_cast<int32_t>(idx);
    i1 = static_cast<int32_t>(idx + (idx < in_size - 1 ? 1 : 0));
    w1 = lam;
    w0 = 1.f - lam;
}

// One instance: output rectangle, the proto cells allowed to be non-zero, its coefficients.
struct Job {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;        // output rect (exclusive end)
    int kc0 = 0, kc1 = 0, kr0 = 0, kr1 = 0;    // kept proto cells [k0, k1); others read as 0
    const float* coef = nullptr;
    int64_t offset = 0;
    int64_t area() const { return int64_t(x1 - x0) * (y1 - y0); }
};

struct Scratch {
    std::vector<float> logits, rows;
    std::vector<int32_t> ci0, ci1;
};

// Render one instance into out (rect-sized, row-major). Returns the count of non-finite pixels.
int64_t render(const ProtoMap& p, const Axis& cols, const Axis& rows, const Job& job, uint8_t* out,
               Scratch& s) {
    const int W = job.x1 - job.x0, H = job.y1 - job.y0;
    if (W <= 0 || H <= 0) return 0;
    const int pc0 = cols.i0[job.x0], pc1 = cols.i1[job.x1 - 1];  // inclusive patch bounds
    const int pr0 = rows.i0[job.y0], pr1 = rows.i1[job.y1 - 1];
    const int PW = pc1 - pc0 + 1, PH = pr1 - pr0 + 1;

    // 1) logits on the patch (cells outside the kept range stay 0).
    s.logits.assign(size_t(PH) * PW, 0.f);
    const int kc0 = std::max(pc0, job.kc0), kc1 = std::min(pc1 + 1, job.kc1);
    const int kr0 = std::max(pr0, job.kr0), kr1 = std::min(pr1 + 1, job.kr1);
    bool finite = true;
    if (kc0 < kc1 && kr0 < kr1) {
        const int kw = kc1 - kc0;
        if (!p.hwc) {
            const size_t plane = size_t(p.mh) * p.mw;
            for (int k = 0; k < p.nm; ++k) {
                const float c = job.coef[k];
                const float* P = p.data + plane * k;
                for (int r = kr0; r < kr1; ++r) {
                    const float* src = P + size_t(r) * p.mw + kc0;
                    float* dst = s.logits.data() + size_t(r - pr0) * PW + (kc0 - pc0);
                    for (int j = 0; j < kw; ++j) dst[j] += c * src[j];
                }
            }
        } else {
            for (int r = kr0; r < kr1; ++r) {
                float* dst = s.logits.data() + size_t(r - pr0) * PW + (kc0 - pc0);
                for (int j = 0; j < kw; ++j) {
                    const float* v = p.data + (size_t(r) * p.mw + (kc0 + j)) * p.nm;
                    float acc = 0.f;
                    for (int k = 0; k < p.nm; ++k) acc += job.coef[k] * v[k];
                    dst[j] = acc;
                }
            }
        }
        for (int r = kr0; r < kr1 && finite; ++r) {
            const float* row = s.logits.data() + size_t(r - pr0) * PW + (kc0 - pc0);
            for (int j = 0; j < kw; ++j) {
                if (!std::isfinite(row[j])) { finite = false; break; }
            }
        }
    }

    // 2) interpolate every patch row along x at the rect's columns.
    s.ci0.resize(W);
    s.ci1.resize(W);
    for (int j = 0; j < W; ++j) {
        s.ci0[j] = cols.i0[job.x0 + j] - pc0;
        s.ci1[j] = cols.i1[job.x0 + j] - pc0;
    }
    const float* cw0 = cols.w0.data() + job.x0;
    const float* cw1 = cols.w1.data() + job.x0;
    s.rows.resize(size_t(PH) * W);
    for (int r = 0; r < PH; ++r) {
        const float* lr = s.logits.data() + size_t(r) * PW;
        float* tr = s.rows.data() + size_t(r) * W;
        const int32_t* a = s.ci0.data();
        const int32_t* b = s.ci1.data();
        for (int j = 0; j < W; ++j) tr[j] = lr[a[j]] * cw0[j] + lr[b[j]] * cw1[j];
    }

    // 3) blend two interpolated rows per output row and threshold.
    int64_t nonfinite = 0;
    for (int y = 0; y < H; ++y) {
        const int yy = job.y0 + y;
        const float* a = s.rows.data() + size_t(rows.i0[yy] - pr0) * W;
        const float* b = s.rows.data() + size_t(rows.i1[yy] - pr0) * W;
        const float h0 = rows.w0[yy], h1 = rows.w1[yy];
        uint8_t* o = out + size_t(y) * W;
        if (finite) {
            for (int j = 0; j < W; ++j) o[j] = (a[j] * h0 + b[j] * h1) > 0.f;
        } else {
            for (int j = 0; j < W; ++j) {
                const float v = a[j] * h0 + b[j] * h1;
                const bool ok = std::isfinite(v);
                nonfinite += !ok;
                o[j] = ok && v > 0.f;
            }
        }
    }
    return nonfinite;
}

// Lay out the bitmaps, then render all jobs (optionally on several threads).
MaskOutput run_jobs(const ProtoMap& p, const Axis& cols, const Axis& rows, std::vector<Job>& jobs,
                    int threads) {
    MaskOutput res;
    const size_t n = jobs.size();
    res.rects.resize(n * 4);
    res.offsets.resize(n + 1);
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) {
        Job& j = jobs[i];
        res.rects[4 * i + 0] = j.x0;
        res.rects[4 * i + 1] = j.y0;
        res.rects[4 * i + 2] = j.x1;
        res.rects[4 * i + 3] = j.y1;
        res.offsets[i] = total;
        j.offset = total;
        total += j.area();
    }
    res.offsets[n] = total;
    res.bits.resize(size_t(total));

    if (threads <= 0) {
        // Threads only pay off for a lot of pixels (about 4 Mpx per extra thread); below that the
        // spawn cost and contention on small edge CPUs outweigh the gain.
        const unsigned hc = std::thread::hardware_concurrency();
        const int64_t want = total >> 22;
        threads = int(std::max<int64_t>(1, std::min<int64_t>(hc ? hc : 1, want)));
    }
    threads = std::max(1, std::min<int>(threads, int(n)));

    if (threads == 1) {
        Scratch s;
        for (const Job& j : jobs) res.nonfinite += render(p, cols, rows, j, res.bits.data() + j.offset, s);
        return res;
    }
    // Balance by pixel count: contiguous chunks of roughly total/threads pixels each.
    std::vector<size_t> bounds{0};
    const int64_t per = (total + threads - 1) / threads;
    int64_t acc = 0;
    for (size_t i = 0; i < n; ++i) {
        acc += jobs[i].area();
        if (acc >= per * int64_t(bounds.size()) && bounds.size() < size_t(threads)) bounds.push_back(i + 1);
    }
    if (bounds.back() != n) bounds.push_back(n);
    std::vector<int64_t> counts(bounds.size() - 1, 0);
    auto work = [&](size_t t) {
        Scratch s;
        for (size_t i = bounds[t]; i < bounds[t + 1]; ++i)
            counts[t] += render(p, cols, rows, jobs[i], res.bits.data() + jobs[i].offset, s);
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t + 1 < bounds.size(); ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
    for (int64_t c : counts) res.nonfinite += c;
    return res;
}

void check_protos(const ProtoMap& p) {
    if (p.nm < 1 || p.mh < 1 || p.mw < 1) bad("protos must have non-zero dimensions");
}

void check_box(const float* b, int64_t i) {
    for (int k = 0; k < 4; ++k) {
        if (!std::isfinite(b[k])) bad("boxes must be finite, box " + std::to_string(i) + " is not");
    }
}

// ceil(v) clamped to [lo, hi] (computed in double so huge coordinates cannot overflow).
inline int ceil_clamp(double v, int lo, int hi) {
    const double c = std::ceil(v);
    if (c <= lo) return lo;
    if (c >= hi) return hi;
    return int(c);
}

// Python's round() (half to even) as used by Ultralytics for the padding.
inline int py_round(double v) { return int(std::nearbyint(v)); }

}  // namespace

MaskOutput masks_native(const ProtoMap& p, const float* coefs, const float* boxes, int64_t n, int orig_h,
                        int orig_w, int threads) {
    check_protos(p);
    if (orig_h < 1 || orig_w < 1) bad("original image size must be at least 1x1");
    for (int64_t i = 0; i < n; ++i) check_box(boxes + 4 * i, i);

    // Unpadded proto region, as Ultralytics scale_masks computes it against the original shape.
    const double gain = std::min(double(p.mh) / orig_h, double(p.mw) / orig_w);
    const double pad_w = (p.mw - orig_w * gain) / 2, pad_h = (p.mh - orig_h * gain) / 2;
    int top = py_round(pad_h - 0.1), left = py_round(pad_w - 0.1);
    int bottom = p.mh - py_round(pad_h + 0.1), right = p.mw - py_round(pad_w + 0.1);
    // Degenerate aspect ratios can round the region to nothing; keep at least one cell.
    top = std::min(std::max(top, 0), p.mh - 1);
    left = std::min(std::max(left, 0), p.mw - 1);
    bottom = std::min(std::max(bottom, top + 1), p.mh);
    right = std::min(std::max(right, left + 1), p.mw);
    const int ch = bottom - top, cw = right - left;

    const float sx = float(cw) / float(orig_w), sy = float(ch) / float(orig_h);
    Axis cols(orig_w), rows(orig_h);
    for (int c = 0; c < orig_w; ++c) {
        source_index(sx, c, cw, cols.i0[c], cols.i1[c], cols.w0[c], cols.w1[c]);
        cols.i0[c] += left;
        cols.i1[c] += left;
    }
    for (int r = 0; r < orig_h; ++r) {
        source_index(sy, r, ch, rows.i0[r], rows.i1[r], rows.w0[r], rows.w1[r]);
        rows.i0[r] += top;
        rows.i1[r] += top;
    }

    std::vector<Job> jobs(size_t(std::max<int64_t>(n, 0)));
    for (int64_t i = 0; i < n; ++i) {
        const float* b = boxes + 4 * i;
        Job& j = jobs[size_t(i)];
        // Pixel (r, c) is kept when x1 <= c < x2 and y1 <= r < y2.
        j.x0 = ceil_clamp(b[0], 0, orig_w);
        j.x1 = std::max(j.x0, ceil_clamp(b[2], 0, orig_w));
        j.y0 = ceil_clamp(b[1], 0, orig_h);
        j.y1 = std::max(j.y0, ceil_clamp(b[3], 0, orig_h));
        if (j.x1 == j.x0 || j.y1 == j.y0) j.x1 = j.x0, j.y1 = j.y0;
        j.kc0 = 0, j.kc1 = p.mw, j.kr0 = 0, j.kr1 = p.mh;
        j.coef = coefs + size_t(i) * p.nm;
    }
    return run_jobs(p, cols, rows, jobs, threads);
}

MaskOutput masks_input(const ProtoMap& p, const float* coefs, const float* boxes, int64_t n,
                       const InputGeometry& g, int threads) {
    check_protos(p);
    if (g.in_h < 1 || g.in_w < 1) bad("model input size must be at least 1x1");
    if (g.orig_h < 1 || g.orig_w < 1) bad("original image size must be at least 1x1");
    if (g.new_w < 1 || g.new_h < 1 || g.pad_left < 0 || g.pad_top < 0 || g.pad_left + g.new_w > g.in_w ||
        g.pad_top + g.new_h > g.in_h)
        bad("letterbox geometry is inconsistent: the resized image (new_w x new_h at pad_left, pad_top) "
            "must lie inside the model input");
    for (int64_t i = 0; i < n; ++i) check_box(boxes + 4 * i, i);

    // Original pixel centre -> input pixel (nearest, inside the unpadded region) -> proto sampling
    // of the input-resolution upsample (mh x mw -> in_h x in_w).
    const float sx = float(p.mw) / float(g.in_w), sy = float(p.mh) / float(g.in_h);
    Axis cols(g.orig_w), rows(g.orig_h);
    for (int c = 0; c < g.orig_w; ++c) {
        const int64_t ix = g.pad_left + (int64_t(2 * int64_t(c) + 1) * g.new_w) / (2 * int64_t(g.orig_w));
        source_index(sx, std::min<int64_t>(ix, g.pad_left + g.new_w - 1), p.mw, cols.i0[c], cols.i1[c],
                     cols.w0[c], cols.w1[c]);
    }
    for (int r = 0; r < g.orig_h; ++r) {
        const int64_t iy = g.pad_top + (int64_t(2 * int64_t(r) + 1) * g.new_h) / (2 * int64_t(g.orig_h));
        source_index(sy, std::min<int64_t>(iy, g.pad_top + g.new_h - 1), p.mh, rows.i0[r], rows.i1[r],
                     rows.w0[r], rows.w1[r]);
    }

    // Box scaled to proto pixels in float32, as Ultralytics multiplies the float32 boxes.
    const float rw = float(double(p.mw) / g.in_w), rh = float(double(p.mh) / g.in_h);
    // Output range along one axis: indices whose two source cells touch the kept cells [k0, k1).
    auto range = [](const Axis& a, int k0, int k1, int& lo, int& hi) {
        lo = int(std::lower_bound(a.i1.begin(), a.i1.end(), k0) - a.i1.begin());
        hi = int(std::upper_bound(a.i0.begin(), a.i0.end(), k1 - 1) - a.i0.begin());
        if (hi < lo) hi = lo;
    };

    std::vector<Job> jobs(size_t(std::max<int64_t>(n, 0)));
    for (int64_t i = 0; i < n; ++i) {
        const float* b = boxes + 4 * i;
        Job& j = jobs[size_t(i)];
        j.coef = coefs + size_t(i) * p.nm;
        j.kc0 = ceil_clamp(b[0] * rw, 0, p.mw);
        j.kc1 = ceil_clamp(b[2] * rw, 0, p.mw);
        j.kr0 = ceil_clamp(b[1] * rh, 0, p.mh);
        j.kr1 = ceil_clamp(b[3] * rh, 0, p.mh);
        if (j.kc1 <= j.kc0 || j.kr1 <= j.kr0) continue;  // empty rect at (0, 0)
        range(cols, j.kc0, j.kc1, j.x0, j.x1);
        range(rows, j.kr0, j.kr1, j.y0, j.y1);
        if (j.x1 == j.x0 || j.y1 == j.y0) j.x1 = j.x0, j.y1 = j.y0;
    }
    return run_jobs(p, cols, rows, jobs, threads);
}

}  // namespace masks
}  // namespace edgeseg
