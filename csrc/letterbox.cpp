// Letterbox geometry and the single-pass resize + pad + swap + normalise + layout kernel.
#include "letterbox.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace edgeseg {
namespace {

constexpr int kCoefBits = 11;  // cv2 INTER_RESIZE_COEF_BITS
constexpr int kCoefOne = 1 << kCoefBits;

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

// Source sample positions for one axis, cv2.INTER_LINEAR convention (weights rounded like cv2):
// s = (d + 0.5) * (src/dst) - 0.5, i0 = floor(s), weight of i1 = s - i0, clamped at both borders.
struct Taps {
    std::vector<int> i0, i1;
    std::vector<int> w1;  // fixed-point weight of i1; weight of i0 is kCoefOne - w1
};

Taps make_taps(int src, int dst) {
    Taps t;
    t.i0.resize(dst);
    t.i1.resize(dst);
    t.w1.resize(dst);
    const double scale = static_cast<double>(src) / dst;
    for (int d = 0; d < dst; ++d) {
        const float s = static_cast<float>((d + 0.5) * scale - 0.5);
        int i = static_cast<int>(std::floor(s));
        float f = s - static_cast<float>(i);
        if (i < 0) {
            i = 0;
            f = 0.f;
        }
        if (i >= src - 1) {
            i = src - 1;
            f = 0.f;
        }
        t.i0[d] = i;
        t.i1[d] = std::min(i + 1, src - 1);
        t.w1[d] = static_cast<int>(std::nearbyint(f * kCoefOne));  // cvRound: half to even
    }
    return t;
}

template <OutType T>
struct Px;
template <>
struct Px<OutType::F32> {
    using type = float;
};
template <>
struct Px<OutType::U8> {
    using type = std::uint8_t;
};
template <>
struct Px<OutType::I8> {
    using type = std::int8_t;
};

template <OutType T>
inline typename Px<T>::type convert(int q) {
    if constexpr (T == OutType::F32) {
        return static_cast<float>(q) / 255.0f;  // same value as numpy/torch `x / 255`
    } else if constexpr (T == OutType::U8) {
        return static_cast<std::uint8_t>(q);
    } else {
        return static_cast<std::int8_t>(q - 128);
    }
}

// Produces resized rows (uint8, source channel order) one at a time. The horizontal pass of a source
// row is cached (two slots), so upscaling computes each source row once; the vertical pass follows
// cv2's SIMD arithmetic, which makes the output bit-exact with cv2.resize on the common paths.
class RowResizer {
public:
    RowResizer(const ImageView& src, int nw, int nh)
        : src_(src), nw_(nw), same_w_(nw == src.w), same_h_(nh == src.h),
          packed_(src.px_stride == 3 && src.ch_stride == 1), row_(static_cast<std::size_t>(nw) * 3) {
        if (!same_w_) {
            tx_ = make_taps(src.w, nw);
            xo0_.resize(nw);
            xo1_.resize(nw);
            for (int x = 0; x < nw; ++x) {
                xo0_[x] = tx_.i0[x] * src.px_stride;
                xo1_[x] = tx_.i1[x] * src.px_stride;
            }
        }
        if (!same_h_) ty_ = make_taps(src.h, nh);
        if (!(same_w_ && same_h_))
            for (auto& b : buf_) b.resize(static_cast<std::size_t>(nw) * 3);
    }

    // Row y of the resized image: nw*3 bytes, pixel stride 3, source channel order.
    const std::uint8_t* row(int y) {
        if (same_w_ && same_h_) {
            const std::uint8_t* s = src_.data + static_cast<std::ptrdiff_t>(y) * src_.row_stride;
            if (packed_) return s;
            for (int x = 0; x < nw_; ++x)
                for (int c = 0; c < 3; ++c) row_[x * 3 + c] = s[x * src_.px_stride + c * src_.ch_stride];
            return row_.data();
        }
        const int sy0 = same_h_ ? y : ty_.i0[y], sy1 = same_h_ ? y : ty_.i1[y];
        const int b1 = same_h_ ? 0 : ty_.w1[y], b0 = kCoefOne - b1;
        const int keep = key_[0] == sy1 ? 0 : key_[1] == sy1 ? 1 : -1;
        const std::int16_t* h0 = buf_[slot(sy0, keep)].data();
        const std::int16_t* h1 = buf_[slot(sy1, sy0 == sy1 ? -1 : (key_[0] == sy0 ? 0 : 1))].data();
        std::uint8_t* r = row_.data();
        const std::size_t n = static_cast<std::size_t>(nw_) * 3;
        for (std::size_t i = 0; i < n; ++i) {  // 16-bit high multiplies (pmulhw), then round by 2 bits
            const auto v0 = static_cast<std::int16_t>((h0[i] * b0) >> 16);
            const auto v1 = static_cast<std::int16_t>((h1[i] * b1) >> 16);
            r[i] = static_cast<std::uint8_t>(static_cast<std::int16_t>(v0 + v1 + 2) >> 2);
        }
        return r;
    }

private:
    // Slot holding the horizontal pass of source row sy, computing it (not into slot `keep`) if needed.
    int slot(int sy, int keep) {
        if (key_[0] == sy) return 0;
        if (key_[1] == sy) return 1;
        const int s = keep == 0 ? 1 : keep == 1 ? 0 : (key_[0] <= key_[1] ? 0 : 1);
        horizontal(src_.data + static_cast<std::ptrdiff_t>(sy) * src_.row_stride, buf_[s].data());
        key_[s] = sy;
        return s;
    }

    void horizontal(const std::uint8_t* s, std::int16_t* h) const {
        if (same_w_) {
            for (int x = 0; x < nw_; ++x)
                for (int c = 0; c < 3; ++c) h[x * 3 + c] = static_cast<std::int16_t>(s[x * src_.px_stride + c * src_.ch_stride] << (kCoefBits - 4));
            return;
        }
        const int* w1 = tx_.w1.data();
        if (packed_) {
            for (int x = 0; x < nw_; ++x) {
                const std::uint8_t* p0 = s + xo0_[x];
                const std::uint8_t* p1 = s + xo1_[x];
                const int a1 = w1[x], a0 = kCoefOne - a1;
                h[x * 3] = static_cast<std::int16_t>((p0[0] * a0 + p1[0] * a1) >> 4);
                h[x * 3 + 1] = static_cast<std::int16_t>((p0[1] * a0 + p1[1] * a1) >> 4);
                h[x * 3 + 2] = static_cast<std::int16_t>((p0[2] * a0 + p1[2] * a1) >> 4);
            }
        } else {
            const std::ptrdiff_t cs = src_.ch_stride;
            for (int x = 0; x < nw_; ++x) {
                const std::uint8_t* p0 = s + xo0_[x];
                const std::uint8_t* p1 = s + xo1_[x];
                const int a1 = w1[x], a0 = kCoefOne - a1;
                for (int c = 0; c < 3; ++c) h[x * 3 + c] = static_cast<std::int16_t>((p0[c * cs] * a0 + p1[c * cs] * a1) >> 4);
            }
        }
    }

    ImageView src_;
    int nw_;
    bool same_w_, same_h_, packed_;
    Taps tx_, ty_;
    std::vector<std::ptrdiff_t> xo0_, xo1_;
    std::vector<std::int16_t> buf_[2];  // horizontal pass >> 4 (fits int16, like cv2)
    int key_[2] = {-1, -1};
    std::vector<std::uint8_t> row_;
};

// Bands of output rows to resize in parallel. threads <= 0: automatic, one band per hardware thread
// once the work is large (about 0.15 M source + output pixels per band; a thread costs ~50 us to
// start), else one.
int band_count(int threads, const ImageView& src, const LetterboxGeometry& g) {
    if (threads <= 0) {
        const std::int64_t work = std::int64_t(std::min(src.h, 2 * g.new_h)) * std::max(src.w, g.new_w) +
                                  std::int64_t(g.new_h) * g.new_w;
        const unsigned hc = std::thread::hardware_concurrency();
        threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(hc ? hc : 1, work / 150000)));
    }
    return std::max(1, std::min(threads, g.new_h / 16));  // at least 16 rows per band
}

template <OutType T, OutLayout L, bool Swap>
void run(const ImageView& src, const LetterboxGeometry& g, int fill, int threads, void* out_raw) {
    using P = typename Px<T>::type;
    P* out = static_cast<P*>(out_raw);
    const std::size_t W = g.in_w, H = g.in_h, plane = W * H;
    const P fillv = convert<T>(fill);

    // Padding only (the resized area is written exactly once below).
    auto fill_rect = [&](std::size_t y0, std::size_t y1, std::size_t x0, std::size_t x1) {
        if (y0 >= y1 || x0 >= x1) return;
        for (std::size_t y = y0; y < y1; ++y) {
            if constexpr (L == OutLayout::NCHW) {
                for (std::size_t c = 0; c < 3; ++c) std::fill_n(out + c * plane + y * W + x0, x1 - x0, fillv);
            } else {
                std::fill_n(out + (y * W + x0) * 3, (x1 - x0) * 3, fillv);
            }
        }
    };
    const std::size_t top = g.pad_top, left = g.pad_left, nw = g.new_w, nh = g.new_h;
    fill_rect(0, top, 0, W);
    fill_rect(top + nh, H, 0, W);
    fill_rect(top, top + nh, 0, left);
    fill_rect(top, top + nh, left + nw, W);

    constexpr int c0 = Swap ? 2 : 0, c2 = Swap ? 0 : 2;  // output channel k takes source channel ck
    // Rows [y0, y1) of the resized area; each band has its own resizer (its own two cached source rows).
    auto band = [&](std::size_t y0, std::size_t y1) {
        RowResizer resizer(src, g.new_w, g.new_h);
        for (std::size_t y = y0; y < y1; ++y) {
            const std::uint8_t* r = resizer.row(static_cast<int>(y));
            if constexpr (L == OutLayout::NCHW) {
                P* d0 = out + (top + y) * W + left;
                P* d1 = d0 + plane;
                P* d2 = d1 + plane;
                for (std::size_t x = 0; x < nw; ++x) d0[x] = convert<T>(r[x * 3 + c0]);
                for (std::size_t x = 0; x < nw; ++x) d1[x] = convert<T>(r[x * 3 + 1]);
                for (std::size_t x = 0; x < nw; ++x) d2[x] = convert<T>(r[x * 3 + c2]);
            } else {
                P* d = out + ((top + y) * W + left) * 3;
                for (std::size_t x = 0; x < nw; ++x) {
                    d[x * 3] = convert<T>(r[x * 3 + c0]);
                    d[x * 3 + 1] = convert<T>(r[x * 3 + 1]);
                    d[x * 3 + 2] = convert<T>(r[x * 3 + c2]);
                }
            }
        }
    };
    const int n = band_count(threads, src, g);
    if (n <= 1) {
        band(0, nh);
        return;
    }
    std::vector<std::exception_ptr> errors(n);
    auto guarded = [&](int b) {
        try {
            band(nh * b / n, nh * (b + 1) / n);
        } catch (...) {
            errors[b] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(n - 1);
    for (int b = 1; b < n; ++b) pool.emplace_back(guarded, b);
    guarded(0);
    for (auto& t : pool) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

template <OutType T, OutLayout L>
void run_swap(const ImageView& src, const LetterboxGeometry& g, int fill, bool swap, int threads, void* out) {
    if (swap)
        run<T, L, true>(src, g, fill, threads, out);
    else
        run<T, L, false>(src, g, fill, threads, out);
}

}  // namespace

LetterboxGeometry letterbox_geometry(int orig_h, int orig_w, int target_h, int target_w, bool scaleup,
                                     bool auto_pad, int stride) {
    if (orig_h <= 0 || orig_w <= 0)
        bad("image must be non-empty, got size " + std::to_string(orig_h) + "x" + std::to_string(orig_w));
    if (target_h <= 0 || target_w <= 0)
        bad("new_shape must be positive, got (" + std::to_string(target_h) + ", " + std::to_string(target_w) + ")");
    if (auto_pad && stride <= 0) bad("stride must be positive, got " + std::to_string(stride));
    double r = std::min(static_cast<double>(target_h) / orig_h, static_cast<double>(target_w) / orig_w);
    if (!scaleup) r = std::min(r, 1.0);
    // Python round() is half-to-even, as is nearbyint in the default rounding mode.
    // A side that would round to 0 pixels (extreme aspect ratios) is kept at 1 pixel.
    const int nw = std::max(1, static_cast<int>(std::nearbyint(orig_w * r)));
    const int nh = std::max(1, static_cast<int>(std::nearbyint(orig_h * r)));
    int dw = target_w - nw, dh = target_h - nh;
    if (auto_pad) {
        dw %= stride;
        dh %= stride;
    }
    const double hw = dw / 2.0, hh = dh / 2.0;
    LetterboxGeometry g;
    g.scale = r;
    g.new_w = nw;
    g.new_h = nh;
    g.pad_left = static_cast<int>(std::nearbyint(hw - 0.1));
    g.pad_top = static_cast<int>(std::nearbyint(hh - 0.1));
    g.in_w = nw + g.pad_left + static_cast<int>(std::nearbyint(hw + 0.1));
    g.in_h = nh + g.pad_top + static_cast<int>(std::nearbyint(hh + 0.1));
    g.orig_w = orig_w;
    g.orig_h = orig_h;
    return g;
}

void letterbox_into(const ImageView& src, const LetterboxGeometry& g, int fill, bool bgr_to_rgb,
                    OutLayout layout, OutType type, void* out, int threads) {
    const bool nchw = layout == OutLayout::NCHW;
    switch (type) {
        case OutType::F32:
            return nchw ? run_swap<OutType::F32, OutLayout::NCHW>(src, g, fill, bgr_to_rgb, threads, out)
                        : run_swap<OutType::F32, OutLayout::NHWC>(src, g, fill, bgr_to_rgb, threads, out);
        case OutType::U8:
            return nchw ? run_swap<OutType::U8, OutLayout::NCHW>(src, g, fill, bgr_to_rgb, threads, out)
                        : run_swap<OutType::U8, OutLayout::NHWC>(src, g, fill, bgr_to_rgb, threads, out);
        case OutType::I8:
            return nchw ? run_swap<OutType::I8, OutLayout::NCHW>(src, g, fill, bgr_to_rgb, threads, out)
                        : run_swap<OutType::I8, OutLayout::NHWC>(src, g, fill, bgr_to_rgb, threads, out);
    }
}

}  // namespace edgeseg
