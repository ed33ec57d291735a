// Known-answer tests of the native core's pure C++ kernels (csrc/*.cpp without the pybind11 bindings).
//
// Self-contained C++17, no test framework, so that the same file builds natively and with the Debian cross
// toolchains (aarch64, armv7 hard float) and runs under qemu-user: .ci/arm does that. Every expected value is
// worked out by hand from the kernel's documented convention (the comment beside it says how), not captured from
// a run of the code.
//
//   g++ -std=c++17 -O2 -Icsrc tests/native/test_core.cpp csrc/{letterbox,decode,decode_split,masks,nms,polygons,quant,track}.cpp -pthread
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "decode.hpp"
#include "decode_split.hpp"
#include "letterbox.hpp"
#include "masks.hpp"
#include "nms.hpp"
#include "polygons.hpp"
#include "quant.hpp"
#include "track.hpp"

using namespace edgeseg;

namespace {

int g_checks = 0, g_failed = 0;

template <class T>
std::string show(const T& v) {
    std::ostringstream s;
    s.precision(9);
    if constexpr (std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t> || std::is_same_v<T, char> ||
                  std::is_same_v<T, signed char> || std::is_same_v<T, unsigned char>)
        s << static_cast<int>(v);
    else
        s << v;
    return s.str();
}

template <class T>
std::string show(const std::vector<T>& v) {
    std::string r = "[";
    for (std::size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + show(v[i]);
    return r + "]";
}

void report(bool ok, const char* file, int line, const std::string& what) {
    ++g_checks;
    if (ok) return;
    ++g_failed;
    std::printf("FAIL %s:%d: %s\n", file, line, what.c_str());
}

template <class A, class B>
void check_eq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line) {
    const bool ok = a == b;
    report(ok, file, line, ok ? "" : std::string(ea) + " == " + eb + "  (got " + show(a) + ", expected " + show(b) + ")");
}

void check_near(double a, double b, double tol, const char* ea, const char* eb, const char* file, int line) {
    const bool ok = std::fabs(a - b) <= tol;  // false for NaN
    report(ok, file, line,
           ok ? "" : std::string(ea) + " ~= " + eb + "  (got " + show(a) + ", expected " + show(b) + ", tol " + show(tol) + ")");
}

}  // namespace

#define CHECK(c) report(static_cast<bool>(c), __FILE__, __LINE__, #c)
#define CHECK_EQ(a, b) check_eq((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_NEAR(a, b, tol) check_near((a), (b), (tol), #a, #b, __FILE__, __LINE__)
#define CHECK_THROWS(expr, type)                                                                   \
    do {                                                                                           \
        bool thrown_ = false;                                                                      \
        try {                                                                                      \
            (void)(expr);                                                                          \
        } catch (const type&) {                                                                    \
            thrown_ = true;                                                                        \
        } catch (...) {                                                                            \
        }                                                                                          \
        report(thrown_, __FILE__, __LINE__, "expected " #type " from " #expr);                     \
    } while (0)
#define CHECK_NOTHROW(expr)                                                                        \
    do {                                                                                           \
        bool ok_ = true;                                                                           \
        try {                                                                                      \
            (void)(expr);                                                                          \
        } catch (...) {                                                                            \
            ok_ = false;                                                                           \
        }                                                                                          \
        report(ok_, __FILE__, __LINE__, "unexpected exception from " #expr);                       \
    } while (0)

namespace {

float sigmoid(double x) { return static_cast<float>(1.0 / (1.0 + std::exp(-x))); }
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- letterbox ---------------------------------------------------------------------------------------------

void test_letterbox_geometry() {
    // 720x1280 -> 640x640: r = min(640/720, 640/1280) = 0.5, 640x360, dh = 280 split 140/140.
    LetterboxGeometry g = letterbox_geometry(720, 1280, 640, 640, true, false, 32);
    CHECK_EQ(g.scale, 0.5);
    CHECK_EQ(g.new_w, 640);
    CHECK_EQ(g.new_h, 360);
    CHECK_EQ(g.pad_left, 0);
    CHECK_EQ(g.pad_top, 140);
    CHECK_EQ(g.in_w, 640);
    CHECK_EQ(g.in_h, 640);
    CHECK_EQ(g.orig_w, 1280);
    CHECK_EQ(g.orig_h, 720);

    // auto padding: dh = 280 % 32 = 24 -> 12 on each side, input 640x384.
    g = letterbox_geometry(720, 1280, 640, 640, true, true, 32);
    CHECK_EQ(g.new_h, 360);
    CHECK_EQ(g.pad_top, 12);
    CHECK_EQ(g.in_h, 384);
    CHECK_EQ(g.in_w, 640);
    CHECK_EQ(g.pad_left, 0);

    // scaleup=false: a 100x200 image is not enlarged into 640x640 (r = 1), padding 220 / 270 on each side.
    g = letterbox_geometry(100, 200, 640, 640, false, false, 32);
    CHECK_EQ(g.scale, 1.0);
    CHECK_EQ(g.new_w, 200);
    CHECK_EQ(g.new_h, 100);
    CHECK_EQ(g.pad_left, 220);
    CHECK_EQ(g.pad_top, 270);
    CHECK_EQ(g.in_w, 640);
    CHECK_EQ(g.in_h, 640);
    // ... but it still shrinks a large image.
    g = letterbox_geometry(720, 1280, 640, 640, false, false, 32);
    CHECK_EQ(g.scale, 0.5);
    // scaleup=true enlarges: r = min(6.4, 3.2) = 3.2, 640x320, pad_top 160.
    g = letterbox_geometry(100, 200, 640, 640, true, false, 32);
    CHECK_NEAR(g.scale, 3.2, 1e-12);
    CHECK_EQ(g.new_w, 640);
    CHECK_EQ(g.new_h, 320);
    CHECK_EQ(g.pad_top, 160);

    // Odd padding: 3x2 -> 10x10, r = 10/3, new 7x10, dw = 3: round(1.5 - 0.1) = 1 left, round(1.5 + 0.1) = 2 right.
    g = letterbox_geometry(3, 2, 10, 10, true, false, 32);
    CHECK_EQ(g.new_w, 7);
    CHECK_EQ(g.new_h, 10);
    CHECK_EQ(g.pad_left, 1);
    CHECK_EQ(g.in_w, 10);
    CHECK_EQ(g.pad_top, 0);

    // Python round() is half to even: 5 * 0.5 = 2.5 -> 2 (not 3); padding 98 -> 49 / 49.
    g = letterbox_geometry(2, 5, 1, 100, true, false, 32);
    CHECK_EQ(g.scale, 0.5);
    CHECK_EQ(g.new_w, 2);
    CHECK_EQ(g.new_h, 1);
    CHECK_EQ(g.pad_left, 49);
    CHECK_EQ(g.in_w, 100);
    CHECK_EQ(g.in_h, 1);

    // Extreme aspect ratio: 1x1000 -> 10x10, r = 0.01, the 0.01-pixel side is kept at 1 pixel.
    g = letterbox_geometry(1, 1000, 10, 10, true, false, 32);
    CHECK_EQ(g.new_w, 10);
    CHECK_EQ(g.new_h, 1);
    CHECK_EQ(g.pad_top, 4);  // dh = 9: round(4.4) = 4, round(4.6) = 5
    CHECK_EQ(g.in_h, 10);

    // Invalid sizes.
    CHECK_THROWS(letterbox_geometry(0, 10, 640, 640, true, false, 32), std::invalid_argument);
    CHECK_THROWS(letterbox_geometry(10, -1, 640, 640, true, false, 32), std::invalid_argument);
    CHECK_THROWS(letterbox_geometry(10, 10, 0, 640, true, false, 32), std::invalid_argument);
    CHECK_THROWS(letterbox_geometry(10, 10, 640, -5, true, false, 32), std::invalid_argument);
    CHECK_THROWS(letterbox_geometry(10, 10, 640, 640, true, true, 0), std::invalid_argument);
    CHECK_NOTHROW(letterbox_geometry(10, 10, 640, 640, true, false, 0));  // stride only matters with auto padding
}

// Packed HWC image view of a vector (pixel stride 3, channel stride 1).
ImageView packed(const std::vector<std::uint8_t>& px, int h, int w) {
    return ImageView{px.data(), h, w, std::ptrdiff_t(w) * 3, 3, 1};
}

// Output element (y, x, c) of a 1x3xHxW or 1xHxWx3 buffer.
template <class P>
P out_at(const std::vector<P>& o, const LetterboxGeometry& g, OutLayout L, int y, int x, int c) {
    if (L == OutLayout::NCHW) return o[std::size_t(c) * g.in_h * g.in_w + std::size_t(y) * g.in_w + x];
    return o[(std::size_t(y) * g.in_w + x) * 3 + c];
}

// A uniform BGR (10, 20, 30) 4x8 image letterboxed into 16x16 (r = 2: resized 16x8 at pad_top 4).
// Resizing a constant is exact in the fixed-point pipeline, so the resized area is the colour (swapped when asked),
// the padding the fill value; each output type normalised as letterbox.cpp's convert(): f32 q / 255, u8 q, i8 q - 128.
template <class P>
void uniform_case(OutType type, OutLayout layout, bool swap, int threads, const char* name) {
    const int h = 4, w = 8, fill = 114;
    std::vector<std::uint8_t> px(std::size_t(h) * w * 3);
    for (std::size_t i = 0; i < px.size(); i += 3) px[i] = 10, px[i + 1] = 20, px[i + 2] = 30;
    const LetterboxGeometry g = letterbox_geometry(h, w, 16, 16, true, false, 32);
    CHECK_EQ(g.new_w, 16);
    CHECK_EQ(g.new_h, 8);
    CHECK_EQ(g.pad_top, 4);
    std::vector<P> out(std::size_t(g.in_h) * g.in_w * 3, P(77));
    letterbox_into(packed(px, h, w), g, fill, swap, layout, type, out.data(), threads);
    auto norm = [&](int q) -> P {
        if (type == OutType::F32) return static_cast<P>(static_cast<float>(q) / 255.0f);
        if (type == OutType::U8) return static_cast<P>(q);
        return static_cast<P>(q - 128);
    };
    const int src[3] = {10, 20, 30};
    int bad = 0;
    for (int y = 0; y < g.in_h; ++y)
        for (int x = 0; x < g.in_w; ++x)
            for (int c = 0; c < 3; ++c) {
                const bool inside = y >= g.pad_top && y < g.pad_top + g.new_h && x >= g.pad_left && x < g.pad_left + g.new_w;
                const int q = inside ? src[swap ? 2 - c : c] : fill;
                if (!(out_at(out, g, layout, y, x, c) == norm(q))) {
                    if (bad++ < 3)
                        std::printf("  %s: (y %d, x %d, c %d) = %s, expected %s\n", name, y, x, c,
                                    show(out_at(out, g, layout, y, x, c)).c_str(), show(norm(q)).c_str());
                }
            }
    report(bad == 0, __FILE__, __LINE__, std::string("uniform letterbox ") + name + ": " + std::to_string(bad) + " wrong elements");
}

void test_letterbox_into() {
    uniform_case<std::uint8_t>(OutType::U8, OutLayout::NCHW, false, 1, "u8 nchw");
    uniform_case<std::uint8_t>(OutType::U8, OutLayout::NCHW, true, 1, "u8 nchw swap");
    uniform_case<std::uint8_t>(OutType::U8, OutLayout::NHWC, true, 1, "u8 nhwc swap");
    uniform_case<std::int8_t>(OutType::I8, OutLayout::NHWC, false, 1, "i8 nhwc");
    uniform_case<std::int8_t>(OutType::I8, OutLayout::NCHW, true, 1, "i8 nchw swap");
    uniform_case<float>(OutType::F32, OutLayout::NCHW, true, 1, "f32 nchw swap");
    uniform_case<float>(OutType::F32, OutLayout::NHWC, false, 0, "f32 nhwc");

    // Explicit values of the normalisations: i8 is q - 128 (30 -> -98, fill 114 -> -14), f32 q / 255.
    {
        std::vector<std::uint8_t> px{10, 20, 30};
        const LetterboxGeometry g = letterbox_geometry(1, 1, 1, 3, true, false, 32);  // 1x1 pixel, 1 left, 1 right
        CHECK_EQ(g.pad_left, 1);
        std::vector<std::int8_t> o8(9);
        letterbox_into(packed(px, 1, 1), g, 114, true, OutLayout::NHWC, OutType::I8, o8.data(), 1);
        CHECK_EQ(o8, (std::vector<std::int8_t>{-14, -14, -14, -98, -108, -118, -14, -14, -14}));
        std::vector<float> of(9);
        letterbox_into(packed(px, 1, 1), g, 0, false, OutLayout::NCHW, OutType::F32, of.data(), 1);
        CHECK_EQ(of[1], 10.0f / 255.0f);
        CHECK_EQ(of[4], 20.0f / 255.0f);
        CHECK_EQ(of[7], 30.0f / 255.0f);
        CHECK_EQ(of[0], 0.0f);
        std::vector<std::uint8_t> ou(9);
        letterbox_into(packed(px, 1, 1), g, 255, false, OutLayout::NCHW, OutType::U8, ou.data(), 1);
        CHECK_EQ(ou, (std::vector<std::uint8_t>{255, 10, 255, 255, 20, 255, 255, 30, 255}));
    }

    // Same size: a plain copy; planar storage (CHW seen as HWC) and a row-flipped view (negative row stride).
    {
        const int h = 2, w = 3;
        std::vector<std::uint8_t> planar(std::size_t(h) * w * 3);
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x) planar[std::size_t(c) * h * w + y * w + x] = std::uint8_t(100 * c + 10 * y + x);
        ImageView v{planar.data(), h, w, w, 1, std::ptrdiff_t(h) * w};
        const LetterboxGeometry g = letterbox_geometry(h, w, h, w, true, false, 32);
        CHECK_EQ(g.pad_left + g.pad_top, 0);
        std::vector<std::uint8_t> out(std::size_t(h) * w * 3);
        letterbox_into(v, g, 0, false, OutLayout::NCHW, OutType::U8, out.data(), 1);
        CHECK_EQ(out, planar);  // NCHW of the planar image is the planar buffer itself
        ImageView flipped = v;
        flipped.data = planar.data() + (h - 1) * w;
        flipped.row_stride = -w;
        letterbox_into(flipped, g, 0, true, OutLayout::NHWC, OutType::U8, out.data(), 1);
        // Output row 0 is source row 1; channels reversed.
        CHECK_EQ(int(out[0]), 210);  // (y 0, x 0, c 0) = source (y 1, x 0, c 2)
        CHECK_EQ(int(out[2]), 10);   // c 2 = source c 0
        CHECK_EQ(int(out[(1 * w + 2) * 3 + 1]), 102);  // (y 1, x 2, c 1) = source (y 0, x 2, c 1)
    }

    // Exact 2x downscale: cv2 INTER_LINEAR samples at (d + 0.5) * 2 - 0.5 = 2d + 0.5, weights 1/2, 1/2 on both
    // axes: each output pixel is the 2x2 block mean, rounded half up ((sum + 2) >> 2 in the fixed-point pipeline).
    {
        const int h = 2, w = 4;
        const int vals[2][4] = {{0, 10, 200, 201}, {20, 31, 255, 255}};
        std::vector<std::uint8_t> px(std::size_t(h) * w * 3);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c) px[(y * w + x) * 3 + c] = std::uint8_t(c == 1 ? 255 - vals[y][x] : vals[y][x]);
        const LetterboxGeometry g = letterbox_geometry(h, w, 1, 2, true, false, 32);
        CHECK_EQ(g.new_w, 2);
        CHECK_EQ(g.new_h, 1);
        std::vector<std::uint8_t> out(6);
        letterbox_into(packed(px, h, w), g, 0, false, OutLayout::NHWC, OutType::U8, out.data(), 1);
        CHECK_EQ(int(out[0]), (0 + 10 + 20 + 31 + 2) / 4);       // 61 / 4 -> 15
        CHECK_EQ(int(out[3]), (200 + 201 + 255 + 255 + 2) / 4);  // 911 / 4 -> 228
        CHECK_EQ(int(out[1]), (255 + 245 + 235 + 224 + 2) / 4);  // 959 / 4 -> 240
        CHECK_EQ(int(out[4]), (55 + 54 + 0 + 0 + 2) / 4);        // 109 / 4 -> 27
    }

    // Exact 2x upscale along x of the row (0, 200): samples at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to
    // 1) give 0, 50, 150, 200; the vertical 1 -> 2 upscale repeats the row.
    {
        std::vector<std::uint8_t> px{0, 0, 0, 200, 200, 200};
        const LetterboxGeometry g = letterbox_geometry(1, 2, 2, 4, true, false, 32);
        CHECK_EQ(g.new_w, 4);
        CHECK_EQ(g.new_h, 2);
        std::vector<std::uint8_t> out(2 * 4 * 3);
        letterbox_into(packed(px, 1, 2), g, 0, false, OutLayout::NCHW, OutType::U8, out.data(), 1);
        const std::vector<std::uint8_t> row{0, 50, 150, 200};
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 2; ++y)
                CHECK_EQ(std::vector<std::uint8_t>(out.begin() + c * 8 + y * 4, out.begin() + c * 8 + y * 4 + 4), row);
    }

    // Several bands (threads): a uniform 64x64 image into 128x160 (r = 2, resized 128x128 at pad_left 16), 4 bands.
    {
        const int h = 64, w = 64;
        std::vector<std::uint8_t> px(std::size_t(h) * w * 3);
        for (std::size_t i = 0; i < px.size(); i += 3) px[i] = 1, px[i + 1] = 128, px[i + 2] = 254;
        const LetterboxGeometry g = letterbox_geometry(h, w, 128, 160, true, false, 32);
        CHECK_EQ(g.pad_left, 16);
        CHECK_EQ(g.new_w, 128);
        std::vector<std::uint8_t> out(std::size_t(g.in_h) * g.in_w * 3);
        letterbox_into(packed(px, h, w), g, 7, false, OutLayout::NHWC, OutType::U8, out.data(), 4);
        int bad = 0;
        for (int y = 0; y < g.in_h; ++y)
            for (int x = 0; x < g.in_w; ++x) {
                const bool inside = x >= 16 && x < 144;
                for (int c = 0; c < 3; ++c)
                    bad += out[(std::size_t(y) * g.in_w + x) * 3 + c] != (inside ? px[c] : 7);
            }
        CHECK_EQ(bad, 0);
    }
}

// ---- decode ------------------------------------------------------------------------------------------------

// 6 anchors, nc = 2, nm = 1 ([N, C] row-major, C = 7): cx, cy, w, h, score0, score1, coef.
std::vector<float> head_nc() {
    return {
        10, 20, 4, 6, 0.9f, 0.3f, 0.5f,           // 0: class 0 (0.9); class 1 also > 0.25
        50, 50, 10, 10, 0.1f, 0.2f, 1.0f,         // 1: below conf
        100, 80, 20, 40, 0.4f, 0.6f, -2.0f,       // 2: class 1 (0.6); class 0 also > 0.25
        1, 1, 1, 1, kNaN, 0.9f, 0.0f,             // 3: NaN class score: counted, skipped
        5, 5, kInf, 2, 0.8f, 0.1f, 0.0f,          // 4: passes, infinite width: counted, dropped
        kNaN, 0, 0, 0, 0.1f, 0.1f, kNaN,          // 5: NaN box but below conf: never looked at, not counted
    };
}

std::vector<float> transpose(const std::vector<float>& nc, std::int64_t N, std::int64_t C) {
    std::vector<float> cn(nc.size());
    for (std::int64_t a = 0; a < N; ++a)
        for (std::int64_t c = 0; c < C; ++c) cn[c * N + a] = nc[a * C + c];
    return cn;
}

void test_decode() {
    const std::int64_t N = 6, C = 7;
    const std::vector<float> nc = head_nc(), cn = transpose(nc, N, C);
    for (int layout = 0; layout < 2; ++layout) {
        const bool is_cn = layout == 1;
        const float* data = is_cn ? cn.data() : nc.data();
        DecodeOptions o;
        o.nc = 2;
        o.conf = 0.25f;
        DecodeOutput out;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 2}));
        CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{0, 1}));
        CHECK_EQ(out.scores, (std::vector<float>{0.9f, 0.6f}));
        CHECK_EQ(out.boxes, (std::vector<float>{8, 17, 12, 23, 90, 60, 110, 100}));  // cx -+ w/2, cy -+ h/2
        CHECK_EQ(out.coefs, (std::vector<float>{0.5f, -2.0f}));
        CHECK_EQ(out.nonfinite, std::int64_t(2));  // anchor 3 (score) and anchor 4 (box)

        // multi_label: every class > conf of each passing anchor, in anchor then class order.
        o.multi_label = true;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 0, 2, 2}));
        CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{0, 1, 0, 1}));
        CHECK_EQ(out.scores, (std::vector<float>{0.9f, 0.3f, 0.4f, 0.6f}));
        CHECK_EQ(out.coefs, (std::vector<float>{0.5f, 0.5f, -2.0f, -2.0f}));
        CHECK_EQ(out.nonfinite, std::int64_t(2));

        // max_nms: the highest scores, in entry order.
        o.max_nms = 2;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.scores, (std::vector<float>{0.9f, 0.6f}));
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 2}));
        CHECK_EQ(out.coefs, (std::vector<float>{0.5f, -2.0f}));
        o.max_nms = 1;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.scores, (std::vector<float>{0.9f}));
        o.max_nms = 30000;

        // keep flags: only class 1. Single label keeps the anchor's best class or nothing (anchor 0's best is 0).
        const std::uint8_t keep[2] = {0, 1};
        o.keep = keep;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 2}));
        CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{1, 1}));
        CHECK_EQ(out.scores, (std::vector<float>{0.3f, 0.6f}));
        o.multi_label = false;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{2}));
        CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{1}));
        CHECK_EQ(out.coefs, (std::vector<float>{-2.0f}));
        o.keep = nullptr;

        // Box scale after cxcywh -> xyxy.
        o.sx = 2.f;
        o.sy = 0.5f;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(std::vector<float>(out.boxes.begin(), out.boxes.begin() + 4), (std::vector<float>{16, 8.5f, 24, 11.5f}));
        o.sx = o.sy = 1.f;

        // conf is strict (> conf): at 0.6 anchor 2 (0.6) drops out, at 0.9 everything does.
        o.conf = 0.6f;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0}));
        o.conf = 0.9f;
        decode_candidates(data, C, N, is_cn, o, out);
        CHECK(out.anchors.empty());
        CHECK(out.coefs.empty());
        CHECK_EQ(out.nonfinite, std::int64_t(1));  // anchor 3 still counted; anchor 4 (0.8) not used any more
    }

    // Ties: the first class with the maximum score. -inf score: non-finite.
    {
        const std::vector<float> t{0, 0, 2, 2, 0.5f, 0.5f, 0, 0, 2, 2, -kInf, 0.7f};  // N = 2, C = 6, nm = 0
        for (int layout = 0; layout < 2; ++layout) {
            const std::vector<float> d = layout ? transpose(t, 2, 6) : t;
            DecodeOptions o;
            o.nc = 2;
            DecodeOutput out;
            decode_candidates(d.data(), 6, 2, layout == 1, o, out);
            CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{0}));
            CHECK_EQ(out.boxes, (std::vector<float>{-1, -1, 1, 1}));
            CHECK_EQ(out.nonfinite, std::int64_t(1));
        }
    }

    // A long sparse [C, N] head (several tiles of 1024, the sparse argmax path): two hits among 2500 anchors.
    {
        const std::int64_t n = 2500, c = 4 + 3 + 2;
        std::vector<float> d(std::size_t(c * n), 0.f);
        auto set = [&](std::int64_t a, std::int64_t ch, float v) { d[std::size_t(ch * n + a)] = v; };
        set(5, 0, 100), set(5, 1, 200), set(5, 2, 8), set(5, 3, 16), set(5, 4 + 0, 0.5f), set(5, 7, 1.5f), set(5, 8, -1.5f);
        set(1500, 0, 10), set(1500, 1, 10), set(1500, 2, 4), set(1500, 3, 4), set(1500, 4 + 2, 0.7f),
            set(1500, 4 + 1, 0.69f), set(1500, 7, 3.f);
        DecodeOptions o;
        o.nc = 3;
        DecodeOutput out;
        decode_candidates(d.data(), c, n, true, o, out);
        CHECK_EQ(out.anchors, (std::vector<std::int32_t>{5, 1500}));
        CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{0, 2}));
        CHECK_EQ(out.scores, (std::vector<float>{0.5f, 0.7f}));
        CHECK_EQ(out.boxes, (std::vector<float>{96, 192, 104, 208, 8, 8, 12, 12}));
        CHECK_EQ(out.coefs, (std::vector<float>{1.5f, -1.5f, 3.f, 0.f}));
        CHECK_EQ(out.nonfinite, std::int64_t(0));
    }
}

// ---- decode_split ------------------------------------------------------------------------------------------

void test_quantised_threshold() {
    // floor(logit(conf) / scale + zero_point); logit(0.5) = 0, logit(0.25) = -ln 3 = -1.0986, logit(0.75) = 1.0986.
    CHECK_EQ(quantised_threshold(0.5, 0.1, 3), 3.0);
    CHECK_EQ(quantised_threshold(0.25, 1.0, 0), -2.0);
    CHECK_EQ(quantised_threshold(0.75, 0.5, 0), 2.0);            // floor(2.197)
    CHECK_EQ(quantised_threshold(0.25, 0.1, -10), -21.0);        // floor(-10.986 - 10)
    CHECK_EQ(quantised_threshold(0.75, 0.1, 128), 138.0);        // floor(10.986 + 128)
    CHECK(quantised_threshold(0.0, 0.1, 0) < -1e29);
    CHECK(quantised_threshold(-1.0, 0.1, 0) < -1e29);
    CHECK(quantised_threshold(1.0, 0.1, 0) > 1e29);
    CHECK(quantised_threshold(2.0, 0.1, 0) > 1e29);
}

void test_decode_split_reg_max1() {
    // Float, reg_max 1 (the box channels are the l, t, r, b distances in cells), NHWC, nc 1, nm 1.
    // Level 0: 2x2 cells, stride 8; level 1: 1x1 cell, stride 16 (global anchor 4).
    std::vector<float> box0{
        0.5f, 0.25f, 1.f, 2.f,  // a0 (centre 0.5, 0.5): x 0..1.5, y 0.25..2.5 cells -> xyxy 0, 2, 12, 20
        1, 1, 1, 1,             // a1
        1, 1, 1, 1,             // a2
        1, 1, 1, 1,             // a3 (centre 1.5, 1.5): 0.5..2.5 cells -> 4, 4, 20, 20
    };
    std::vector<float> cls0{2.f, -5.f, -5.f, 0.f};
    std::vector<float> coef0{0.25f, 1.f, 2.f, 0.75f};
    std::vector<float> box1{0.5f, 0.5f, 0.5f, 0.5f};  // centre 0.5, 0.5 -> 0..1 cells -> 0, 0, 16, 16
    std::vector<float> cls1{-1.f};                     // sigmoid(-1) = 0.269 > 0.25
    std::vector<float> coef1{-3.f};
    std::vector<SplitLevel> levels(2);
    levels[0].box.data = box0.data(), levels[0].cls.data = cls0.data(), levels[0].coef.data = coef0.data();
    levels[0].h = 2, levels[0].w = 2, levels[0].stride = 8;
    levels[1].box.data = box1.data(), levels[1].cls.data = cls1.data(), levels[1].coef.data = coef1.data();
    levels[1].h = 1, levels[1].w = 1, levels[1].stride = 16;
    SplitOptions o;
    o.nc = 1, o.nm = 1, o.reg_max = 1, o.dtype = SplitDType::F32, o.cn = false, o.conf = 0.25f;
    DecodeOutput out;
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 3, 4}));
    CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{0, 0, 0}));
    CHECK_EQ(out.boxes, (std::vector<float>{0, 2, 12, 20, 4, 4, 20, 20, 0, 0, 16, 16}));
    CHECK_EQ(out.coefs, (std::vector<float>{0.25f, 0.75f, -3.f}));
    CHECK_EQ(out.scores.size(), std::size_t(3));
    if (out.scores.size() == 3) {
        CHECK_NEAR(out.scores[0], sigmoid(2.0), 1e-6);
        CHECK_NEAR(out.scores[1], 0.5, 1e-7);
        CHECK_NEAR(out.scores[2], sigmoid(-1.0), 1e-6);
    }
    CHECK_EQ(out.nonfinite, std::int64_t(0));

    // The dense [4 + nc + nm, N] decode: cx, cy, w, h, sigmoid scores, coefficients.
    std::vector<float> dense((4 + 1 + 1) * 5);
    decode_split_dense(levels, o, dense.data());
    auto D = [&](int row, int a) { return dense[std::size_t(row) * 5 + a]; };
    CHECK_EQ(D(0, 0), 6.f);
    CHECK_EQ(D(1, 0), 11.f);
    CHECK_EQ(D(2, 0), 12.f);
    CHECK_EQ(D(3, 0), 18.f);
    CHECK_EQ(D(0, 4), 8.f);
    CHECK_EQ(D(2, 4), 16.f);
    CHECK_NEAR(D(4, 1), sigmoid(-5.0), 1e-6);
    CHECK_EQ(D(5, 2), 2.f);

    // The same head as NCHW ([C, HW] per tensor) gives the same candidates.
    std::vector<float> box0cn = transpose(box0, 4, 4);
    levels[0].box.data = box0cn.data();
    o.cn = true;
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 3, 4}));
    CHECK_EQ(out.boxes, (std::vector<float>{0, 2, 12, 20, 4, 4, 20, 20, 0, 0, 16, 16}));

    // conf 0.5: a score must be > 0.5, i.e. a logit > 0: anchor 3 (logit 0) fails; NaN class logit counted.
    cls0[3] = kNaN;
    o.conf = 0.5f;
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0}));
    CHECK_EQ(out.nonfinite, std::int64_t(1));
    // keep flags: class 0 dropped -> nothing.
    const std::uint8_t keep[1] = {0};
    o.keep = keep;
    decode_split_candidates(levels, o, out);
    CHECK(out.anchors.empty());
}

void test_decode_split_dfl() {
    // reg_max 16, float, NCHW, one level 1x2 cells, stride 16, nc 2, nm 0. A logit of 120 on one bin and 0 on
    // the others is a one-hot distribution in float (exp(-120) underflows to 0): the expectation is the bin.
    // Two equal hot bins k, k + 1 give k + 0.5.
    const int R = 16;
    const std::int64_t HW = 2;
    std::vector<float> box(std::size_t(4 * R * HW), 0.f);
    auto hot = [&](std::int64_t a, int side, int bin) { box[std::size_t((side * R + bin) * HW + a)] = 120.f; };
    // anchor 1 (centre 1.5, 0.5): l = 1, t = 0, r = 3, b = 2.5 -> x 0.5..4.5, y 0.5..3 cells -> 8, 8, 72, 48
    hot(1, 0, 1), hot(1, 1, 0), hot(1, 2, 3), hot(1, 3, 2), hot(1, 3, 3);
    // anchor 0 (centre 0.5, 0.5): l = 0, t = 0, r = 15, b = 7 -> x 0.5..15.5, y 0.5..7.5 -> 8, 8, 248, 120
    hot(0, 0, 0), hot(0, 1, 0), hot(0, 2, 15), hot(0, 3, 7);
    std::vector<float> cls{-10.f, 3.f,   // class 0 of anchors 0, 1 ([C, HW])
                           0.5f, 1.f};   // class 1
    std::vector<SplitLevel> levels(1);
    levels[0].box.data = box.data(), levels[0].cls.data = cls.data(), levels[0].coef.data = cls.data();
    levels[0].h = 1, levels[0].w = 2, levels[0].stride = 16;
    SplitOptions o;
    o.nc = 2, o.nm = 0, o.reg_max = R, o.dtype = SplitDType::F32, o.cn = true, o.conf = 0.25f;
    DecodeOutput out;
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 1}));
    CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{1, 0}));
    CHECK_EQ(out.boxes, (std::vector<float>{8, 8, 248, 120, 8, 8, 72, 48}));
    if (out.scores.size() == 2) {
        CHECK_NEAR(out.scores[0], sigmoid(0.5), 1e-6);
        CHECK_NEAR(out.scores[1], sigmoid(3.0), 1e-6);
    }
    o.multi_label = true;
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{0, 1, 1}));
    CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{1, 0, 1}));
}

void test_decode_split_quantised() {
    // int8, NHWC, reg_max 1, one level 1x2 cells stride 8, nc 2, nm 1. Class scale 0.1, zero point -10:
    // threshold floor(logit(0.25) / 0.1 - 10) = -21, a class passes when q > -21.
    // Box scale 0.5, zero point 0 (q 2 -> 1 cell); coefficient scale 0.25, zero point 4.
    std::vector<std::int8_t> box{2, 2, 2, 2, 2, 2, 2, 2};
    std::vector<std::int8_t> cls{-21, -22,  // anchor 0: best q -21 (sigmoid(-1.1) = 0.2497): fails
                                 -25, -20}; // anchor 1: class 1, q -20 -> real -1.0 -> sigmoid(-1) = 0.269
    std::vector<std::int8_t> coef{0, -128};  // anchor 1: (-128 - 4) * 0.25 = -33
    std::vector<SplitLevel> levels(1);
    levels[0].box = {box.data(), 0.5f, 0};
    levels[0].cls = {cls.data(), 0.1f, -10};
    levels[0].coef = {coef.data(), 0.25f, 4};
    levels[0].h = 1, levels[0].w = 2, levels[0].stride = 8;
    SplitOptions o;
    o.nc = 2, o.nm = 1, o.reg_max = 1, o.dtype = SplitDType::I8, o.cn = false, o.conf = 0.25f;
    DecodeOutput out;
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{1}));
    CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{1}));
    CHECK_EQ(out.boxes, (std::vector<float>{4, -4, 20, 12}));  // centre (1.5, 0.5) +- 1 cell, x 8
    CHECK_EQ(out.coefs, (std::vector<float>{-33.f}));
    if (out.scores.size() == 1) CHECK_NEAR(out.scores[0], sigmoid(-1.0), 1e-6);
    o.cn = true;  // NCHW: [C, HW]
    std::vector<std::int8_t> cls_cn{-21, -25, -22, -20};
    std::vector<std::int8_t> coef_cn{0, -128};
    levels[0].cls.data = cls_cn.data();
    levels[0].coef.data = coef_cn.data();
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{1}));
    CHECK_EQ(out.coefs, (std::vector<float>{-33.f}));

    // uint8, zero point 128, scale 0.05: threshold floor(logit(0.25) / 0.05 + 128) = floor(106.03) = 106.
    std::vector<std::uint8_t> ubox{128 + 20, 128 + 20, 128 + 20, 128 + 20, 130, 130, 130, 130};  // 1 cell / 0.1 cell
    std::vector<std::uint8_t> ucls{106, 100, 255, 107};  // a0: 106 fails; a1: 255 (class 0): (127) * 0.05 = 6.35
    std::vector<std::uint8_t> ucoef{0, 200};
    levels[0].box = {ubox.data(), 0.05f, 128};
    levels[0].cls = {ucls.data(), 0.05f, 128};
    levels[0].coef = {ucoef.data(), 0.5f, 100};
    o.dtype = SplitDType::U8, o.cn = false, o.multi_label = true;
    CHECK_EQ(quantised_threshold(0.25, 0.05, 128), 106.0);
    decode_split_candidates(levels, o, out);
    CHECK_EQ(out.anchors, (std::vector<std::int32_t>{1, 1}));
    CHECK_EQ(out.class_ids, (std::vector<std::int32_t>{0, 1}));
    CHECK_EQ(out.coefs, (std::vector<float>{50.f, 50.f}));  // (200 - 100) * 0.5
    if (out.scores.size() == 2) {
        CHECK_NEAR(out.scores[0], sigmoid(127 * 0.05), 1e-6);
        CHECK_NEAR(out.scores[1], sigmoid(-21 * 0.05), 1e-6);
    }
    if (out.boxes.size() == 8) {  // centre (1.5, 0.5) +- (130 - 128) * 0.05 = 0.1 cell, x 8
        CHECK_NEAR(out.boxes[4], 11.2, 1e-5);
        CHECK_NEAR(out.boxes[5], 3.2, 1e-5);
        CHECK_NEAR(out.boxes[6], 12.8, 1e-5);
        CHECK_NEAR(out.boxes[7], 4.8, 1e-5);
    }
}

// ---- nms / topk --------------------------------------------------------------------------------------------

void test_nms() {
    // A, B overlap with IoU 81 / 119 = 0.68; C apart; D = A's box with a higher score and class 1.
    const std::vector<float> boxes{0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 10};
    const std::vector<float> scores{0.9f, 0.8f, 0.7f, 0.95f};
    const std::vector<std::int32_t> cls{0, 0, 0, 1};
    std::vector<std::int64_t> keep;
    nms_greedy(boxes.data(), scores.data(), nullptr, 4, 0.5f, 100, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{3, 2}));  // D suppresses A (IoU 1) and B (0.68)
    nms_greedy(boxes.data(), scores.data(), cls.data(), 4, 0.5f, 100, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{3, 0, 2}));  // class-aware: D and A both stay, A suppresses B
    nms_greedy(boxes.data(), scores.data(), cls.data(), 4, 0.5f, 2, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{3, 0}));  // max_det
    nms_greedy(boxes.data(), scores.data(), nullptr, 4, 0.7f, 100, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{3, 1, 2}));  // 0.68 < 0.7: B survives
    nms_greedy(boxes.data(), scores.data(), nullptr, 0, 0.5f, 100, keep);
    CHECK(keep.empty());
    nms_greedy(boxes.data(), scores.data(), nullptr, 4, 0.5f, 0, keep);
    CHECK(keep.empty());

    // IoU exactly at the threshold does not suppress (IoU > thr does): inter 2, union 4.
    const std::vector<float> half{0, 0, 3, 1, 1, 0, 4, 1};
    const std::vector<float> s2{0.5f, 0.5f};  // a tie: the earlier box first
    nms_greedy(half.data(), s2.data(), nullptr, 2, 0.5f, 10, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{0, 1}));
    nms_greedy(half.data(), s2.data(), nullptr, 2, 0.49f, 10, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{0}));
    // Zero-area boxes never suppress each other.
    const std::vector<float> dots{5, 5, 5, 5, 5, 5, 5, 5};
    nms_greedy(dots.data(), s2.data(), nullptr, 2, 0.0f, 10, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{0, 1}));
}

void test_topk_pairs() {
    // (anchor, score): best per anchor 7 -> 0.8, 3 -> 0.9, 5 -> 0.5, 9 -> 0.8.
    const std::vector<std::int32_t> anchors{7, 3, 7, 5, 3, 9};
    const std::vector<float> scores{0.2f, 0.9f, 0.8f, 0.5f, 0.85f, 0.8f};
    std::vector<std::int64_t> keep;
    // k = 2: anchors 3 and 7 (7 and 9 tie at 0.8: the lower anchor index); their two best pairs.
    topk_pairs(anchors.data(), scores.data(), 6, 2, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{1, 4}));
    // k = 3: anchors 3, 7, 9; pairs 0.9, 0.85, then 0.8 of input 2 before 0.8 of input 5.
    topk_pairs(anchors.data(), scores.data(), 6, 3, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{1, 4, 2}));
    // k past everything: all pairs by score (ties by input order).
    topk_pairs(anchors.data(), scores.data(), 6, 10, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{1, 4, 2, 5, 3, 0}));
    topk_pairs(anchors.data(), scores.data(), 6, 0, keep);
    CHECK(keep.empty());
    // k = 1 with two anchors tied on the best score: the lower anchor id, though it comes later in the input.
    const std::vector<std::int32_t> a2{8, 2};
    const std::vector<float> s2{0.6f, 0.6f};
    topk_pairs(a2.data(), s2.data(), 2, 1, keep);
    CHECK_EQ(keep, (std::vector<std::int64_t>{1}));
}

// ---- masks -------------------------------------------------------------------------------------------------

std::vector<std::uint8_t> bits_of(const masks::MaskOutput& m, std::size_t i) {
    return std::vector<std::uint8_t>(m.bits.begin() + m.offsets[i], m.bits.begin() + m.offsets[i + 1]);
}

std::vector<std::int32_t> rect_of(const masks::MaskOutput& m, std::size_t i) {
    return std::vector<std::int32_t>(m.rects.begin() + 4 * i, m.rects.begin() + 4 * i + 4);
}

void test_masks_native() {
    // nm 2, 8x8 prototypes: channel 0 is +1 on columns 0..3 and -1 on 4..7, channel 1 is -1 everywhere.
    const int nm = 2, mh = 8, mw = 8;
    std::vector<float> chw(std::size_t(nm) * mh * mw), hwc(chw.size());
    for (int y = 0; y < mh; ++y)
        for (int x = 0; x < mw; ++x) {
            const float v0 = x < 4 ? 1.f : -1.f, v1 = -1.f;
            chw[std::size_t(y) * mw + x] = v0;
            chw[std::size_t(mh * mw) + y * mw + x] = v1;
            hwc[(std::size_t(y) * mw + x) * nm] = v0;
            hwc[(std::size_t(y) * mw + x) * nm + 1] = v1;
        }
    for (int layout = 0; layout < 2; ++layout) {
        const masks::ProtoMap p{layout ? hwc.data() : chw.data(), nm, mh, mw, layout == 1};
        // Same size as the original (8x8): the mask of coefficient (1, 0) is the left half inside the box; the
        // box keeps pixels with x1 <= c < x2, y1 <= r < y2: (2.5, 3.2, 6, 7.01) -> columns 3..5, rows 4..7.
        {
            const std::vector<float> coefs{1, 0, 0, 1, kNaN, 0};
            const std::vector<float> boxes{2.5f, 3.2f, 6.f, 7.01f, -5, -5, 3, 3, 0, 0, 2, 1};
            const masks::MaskOutput m = masks::masks_native(p, coefs.data(), boxes.data(), 3, 8, 8, 1);
            CHECK_EQ(rect_of(m, 0), (std::vector<std::int32_t>{3, 4, 6, 8}));
            CHECK_EQ(bits_of(m, 0), (std::vector<std::uint8_t>{1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0}));
            CHECK_EQ(rect_of(m, 1), (std::vector<std::int32_t>{0, 0, 3, 3}));  // clipped to the frame
            CHECK_EQ(bits_of(m, 1), std::vector<std::uint8_t>(9, 0));             // channel 1: all negative
            CHECK_EQ(rect_of(m, 2), (std::vector<std::int32_t>{0, 0, 2, 1}));
            CHECK_EQ(bits_of(m, 2), std::vector<std::uint8_t>(2, 0));             // NaN logits: background ...
            CHECK_EQ(m.nonfinite, std::int64_t(2));                               // ... and counted
            CHECK_EQ(m.offsets, (std::vector<std::int64_t>{0, 12, 21, 23}));
        }
        // 16x16 original: bilinear 2x upsampling; column c samples (c + 0.5) / 2 - 0.5: c = 7 -> 3.25 (0.75 * 1 +
        // 0.25 * -1 = 0.5 > 0), c = 8 -> 3.75 (-0.5): the left 8 columns. Empty box -> empty rect at its corner.
        {
            const std::vector<float> coefs{1, 0, 1, 0};
            const std::vector<float> boxes{0, 0, 16, 16, 5, 5, 5, 9};
            const masks::MaskOutput m = masks::masks_native(p, coefs.data(), boxes.data(), 2, 16, 16, 2);
            CHECK_EQ(rect_of(m, 0), (std::vector<std::int32_t>{0, 0, 16, 16}));
            std::vector<std::uint8_t> expect(256);
            for (int y = 0; y < 16; ++y)
                for (int x = 0; x < 16; ++x) expect[y * 16 + x] = x < 8;
            CHECK_EQ(bits_of(m, 0), expect);
            CHECK_EQ(rect_of(m, 1), (std::vector<std::int32_t>{5, 5, 5, 5}));
            CHECK_EQ(m.offsets[2], std::int64_t(256));
            CHECK_EQ(m.nonfinite, std::int64_t(0));
        }
    }
    // Letterboxed prototypes: original 8x16 (h x w) over 8x8 protos: gain 0.5, pad_h 2 -> the image is proto rows
    // 2..5; rows 0, 1, 6, 7 are padding and must never be read. Protos: +1 on rows 2..5, -1 on the padding.
    {
        std::vector<float> pr(64);
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x) pr[y * 8 + x] = (y >= 2 && y <= 5) ? 1.f : -1.f;
        const masks::ProtoMap p{pr.data(), 1, 8, 8, false};
        const std::vector<float> coefs{1};
        const std::vector<float> boxes{0, 0, 16, 8};
        const masks::MaskOutput m = masks::masks_native(p, coefs.data(), boxes.data(), 1, 8, 16, 1);
        CHECK_EQ(rect_of(m, 0), (std::vector<std::int32_t>{0, 0, 16, 8}));
        CHECK_EQ(bits_of(m, 0), std::vector<std::uint8_t>(128, 1));
    }
    const masks::ProtoMap p{chw.data(), nm, mh, mw, false};
    const std::vector<float> c{1, 0}, nanbox{kNaN, 0, 1, 1};
    CHECK_THROWS(masks::masks_native(p, c.data(), nanbox.data(), 1, 8, 8, 1), std::invalid_argument);
    const std::vector<float> okbox{0, 0, 1, 1};
    CHECK_THROWS(masks::masks_native(p, c.data(), okbox.data(), 1, 0, 8, 1), std::invalid_argument);
    const masks::ProtoMap empty{chw.data(), 0, mh, mw, false};
    CHECK_THROWS(masks::masks_native(empty, c.data(), okbox.data(), 1, 8, 8, 1), std::invalid_argument);
}

void test_masks_input() {
    // One positive channel (+1 everywhere), 8x8 protos, model input 16x16, original 8x16 letterboxed at pad_top 4
    // (new 16x8). Original (r, c) reads input pixel (4 + r, c). Box (0, 4, 8, 12) in input pixels -> kept proto
    // cells: columns ceil(0)..ceil(4) = [0, 4), rows [2, 6); outside them the logits are 0 (cropped). Upsampled:
    // input column 8 samples 3.75 -> 0.25 * cell 3 (= 1) > 0; column 9 samples 4.25 -> cells 4, 5 (both 0). So
    // original columns 0..8 (rect x1 = 9), every row (input rows 4..11 sample proto rows 1.75..5.25: all > 0).
    std::vector<float> pr(64, 1.f);
    const masks::ProtoMap p{pr.data(), 1, 8, 8, false};
    masks::InputGeometry g{};
    g.in_h = 16, g.in_w = 16, g.pad_left = 0, g.pad_top = 4, g.new_w = 16, g.new_h = 8, g.orig_h = 8, g.orig_w = 16;
    const std::vector<float> coefs{1, -1, 1};
    const std::vector<float> boxes{0, 4, 8, 12, 0, 4, 8, 12, 3, 3, 3.5f, 20};
    const masks::MaskOutput m = masks::masks_input(p, coefs.data(), boxes.data(), 3, g, 1);
    CHECK_EQ(rect_of(m, 0), (std::vector<std::int32_t>{0, 0, 9, 8}));
    CHECK_EQ(bits_of(m, 0), std::vector<std::uint8_t>(72, 1));
    CHECK_EQ(rect_of(m, 1), (std::vector<std::int32_t>{0, 0, 9, 8}));  // same rect, negative logits
    CHECK_EQ(bits_of(m, 1), std::vector<std::uint8_t>(72, 0));
    // Box (3, 3, 3.5, 20): proto columns ceil(1.5) = 2 .. ceil(1.75) = 2: no cell -> an empty rect at (0, 0).
    CHECK_EQ(rect_of(m, 2), (std::vector<std::int32_t>{0, 0, 0, 0}));
    CHECK_EQ(m.nonfinite, std::int64_t(0));
    masks::InputGeometry bad = g;
    bad.pad_top = 9;  // 9 + 8 > 16
    CHECK_THROWS(masks::masks_input(p, coefs.data(), boxes.data(), 1, bad, 1), std::invalid_argument);
}

// ---- polygons ----------------------------------------------------------------------------------------------

std::vector<std::uint8_t> bitmap(int h, int w, std::initializer_list<std::initializer_list<int>> rects, std::uint8_t on = 1) {
    std::vector<std::uint8_t> b(std::size_t(h) * w, 0);
    for (const auto& r : rects) {  // x0, y0, x1, y1 inclusive
        const int* v = r.begin();
        for (int y = v[1]; y <= v[3]; ++y)
            for (int x = v[0]; x <= v[2]; ++x) b[std::size_t(y) * w + x] = on;
    }
    return b;
}

void test_polygons() {
    using polygons::Contour;
    // A filled 5x3 rectangle: its 4 corners, from the first pixel in raster order down the left side
    // (counter-clockwise on screen, as cv2.findContours with CHAIN_APPROX_SIMPLE).
    std::vector<std::uint8_t> b = bitmap(5, 7, {{1, 1, 5, 3}}, 255);  // any non-zero byte is foreground
    auto cs = polygons::external_contours(b.data(), 5, 7, 0, 0);
    CHECK_EQ(cs.size(), std::size_t(1));
    if (cs.size() == 1) CHECK_EQ(cs[0], (Contour{1, 1, 1, 3, 5, 3, 5, 1}));
    cs = polygons::external_contours(b.data(), 5, 7, 100, -50);  // offsets
    if (cs.size() == 1) CHECK_EQ(cs[0], (Contour{101, -49, 101, -47, 105, -47, 105, -49}));

    // Two components: two contours in raster order of their first pixel; the larger (same point count, larger
    // area: 3 vs 1) is the largest.
    b = bitmap(6, 9, {{5, 1, 8, 2}, {1, 3, 2, 4}});
    cs = polygons::external_contours(b.data(), 6, 9, 0, 0);
    CHECK_EQ(cs.size(), std::size_t(2));
    if (cs.size() == 2) {
        CHECK_EQ(cs[0], (Contour{5, 1, 5, 2, 8, 2, 8, 1}));
        CHECK_EQ(cs[1], (Contour{1, 3, 1, 4, 2, 4, 2, 3}));
    }
    CHECK_EQ(polygons::largest_contour(cs), 0);

    // A single pixel, a horizontal line, a diagonal pair (8-connected: one component).
    b = bitmap(3, 3, {{1, 1, 1, 1}});
    cs = polygons::external_contours(b.data(), 3, 3, 0, 0);
    if (CHECK_EQ(cs.size(), std::size_t(1)), cs.size() == 1) CHECK_EQ(cs[0], (Contour{1, 1}));
    b = bitmap(3, 6, {{1, 1, 4, 1}});
    cs = polygons::external_contours(b.data(), 3, 6, 0, 0);
    if (CHECK_EQ(cs.size(), std::size_t(1)), cs.size() == 1) CHECK_EQ(cs[0], (Contour{1, 1, 4, 1}));
    b = bitmap(4, 4, {{1, 1, 1, 1}, {2, 2, 2, 2}});
    cs = polygons::external_contours(b.data(), 4, 4, 0, 0);
    if (CHECK_EQ(cs.size(), std::size_t(1)), cs.size() == 1) CHECK_EQ(cs[0], (Contour{1, 1, 2, 2}));
    // The bitmap's border pixels count (a full bitmap is one rectangle).
    b = bitmap(3, 4, {{0, 0, 3, 2}});
    cs = polygons::external_contours(b.data(), 3, 4, 0, 0);
    if (CHECK_EQ(cs.size(), std::size_t(1)), cs.size() == 1) CHECK_EQ(cs[0], (Contour{0, 0, 0, 2, 3, 2, 3, 0}));

    // A ring with a dot in its hole: only the ring's outer border is external.
    b = bitmap(9, 9, {{1, 1, 7, 1}, {1, 7, 7, 7}, {1, 1, 1, 7}, {7, 1, 7, 7}, {4, 4, 4, 4}});
    cs = polygons::external_contours(b.data(), 9, 9, 0, 0);
    if (CHECK_EQ(cs.size(), std::size_t(1)), cs.size() == 1) CHECK_EQ(cs[0], (Contour{1, 1, 1, 7, 7, 7, 7, 1}));

    // Empty bitmaps.
    b.assign(12, 0);
    CHECK(polygons::external_contours(b.data(), 3, 4, 0, 0).empty());
    CHECK(polygons::external_contours(b.data(), 0, 4, 0, 0).empty());

    // Offsets past int32 are rejected.
    b = bitmap(2, 5, {{0, 0, 4, 1}});
    CHECK_THROWS(polygons::external_contours(b.data(), 2, 5, std::numeric_limits<std::int32_t>::max() - 2, 0),
                 std::invalid_argument);
    CHECK_THROWS(polygons::external_contours(b.data(), 2, 5, 0, std::numeric_limits<std::int32_t>::min()),
                 std::invalid_argument);
    CHECK_NOTHROW(polygons::external_contours(b.data(), 2, 5, std::numeric_limits<std::int32_t>::max() - 5, 0));

    // largest_contour: most points first, then area, then the first.
    const std::vector<Contour> list{{0, 0, 0, 10, 10, 10, 10, 0},                // 4 points, area 100
                                    {0, 0, 0, 1, 1, 2, 2, 1, 1, 0},              // 5 points, small
                                    {0, 0, 0, 2, 2, 2, 2, 0}};                   // 4 points, area 4
    CHECK_EQ(polygons::largest_contour(list), 1);
    CHECK_EQ(polygons::largest_contour({list[2], list[0]}), 1);
    CHECK_EQ(polygons::largest_contour({list[0], list[0]}), 0);
    CHECK_EQ(polygons::largest_contour({}), -1);
}

// ---- quant -------------------------------------------------------------------------------------------------

void test_dequantize() {
    const std::vector<std::int8_t> q8{-128, -1, 0, 127};
    std::vector<float> out(4, 99.f);
    dequantize(q8.data(), q8.size(), 0.5f, -3.f, out.data());  // (q + 3) * 0.5
    CHECK_EQ(out, (std::vector<float>{-62.5f, 1.f, 1.5f, 65.f}));
    const std::vector<std::uint8_t> qu{0, 128, 255};
    dequantize(qu.data(), qu.size(), 0.25f, 128.f, out.data());  // (q - 128) * 0.25
    CHECK_EQ(std::vector<float>(out.begin(), out.begin() + 3), (std::vector<float>{-32.f, 0.f, 31.75f}));
    CHECK_EQ(out[3], 65.f);  // n respected: the 4th element untouched
    // Raw bytes 0xFF, 0x80 read as int8 are -1, -128 (signed whatever the platform's plain char is).
    const std::uint8_t raw[2] = {0xFF, 0x80};
    dequantize(reinterpret_cast<const std::int8_t*>(raw), 2, 1.f, 0.f, out.data());
    CHECK_EQ(out[0], -1.f);
    CHECK_EQ(out[1], -128.f);
    dequantize(raw, 2, 1.f, 0.f, out.data());
    CHECK_EQ(out[0], 255.f);
    CHECK_EQ(out[1], 128.f);
    dequantize(qu.data(), 0, 1.f, 0.f, nullptr);  // n = 0 touches nothing
}

// ---- track -------------------------------------------------------------------------------------------------

void test_linear_assignment() {
    // 3x3: the optimum 1 + 2 + 2 = 5 (row 0 -> 1, row 1 -> 0, row 2 -> 2); every other permutation costs >= 6.
    const std::vector<double> c{4, 1, 3, 2, 0, 5, 3, 2, 2};
    std::vector<std::int64_t> r(3, 7);
    track::linear_assignment(c.data(), 3, 3, 100.0, r.data());
    CHECK_EQ(r, (std::vector<std::int64_t>{1, 0, 2}));
    // limit 2.5: only entries < 2.5 can be taken, minimising sum(cost - 2.5): row 1 -> 1 (-2.5) and row 2 -> 2
    // (-0.5) give -3, better than the full 5 (-2.5); row 0 stays unmatched.
    track::linear_assignment(c.data(), 3, 3, 2.5, r.data());
    CHECK_EQ(r, (std::vector<std::int64_t>{-1, 1, 2}));
    // Nothing below the limit.
    track::linear_assignment(c.data(), 3, 3, 0.0, r.data());
    CHECK_EQ(r, (std::vector<std::int64_t>{-1, -1, -1}));
    // Rectangular, both ways.
    const std::vector<double> wide{5, 1, 9, 1, 5, 9};
    std::vector<std::int64_t> r2(2);
    track::linear_assignment(wide.data(), 2, 3, 100.0, r2.data());
    CHECK_EQ(r2, (std::vector<std::int64_t>{1, 0}));
    const std::vector<double> tall{5, 1, 1, 5, 3, 3};
    track::linear_assignment(tall.data(), 3, 2, 100.0, r.data());
    CHECK_EQ(r, (std::vector<std::int64_t>{1, 0, -1}));
    track::linear_assignment(tall.data(), 3, 0, 100.0, r.data());
    CHECK_EQ(r, (std::vector<std::int64_t>{-1, -1, -1}));

    // The Assignment class directly: only negative entries are taken.
    track::Assignment a;
    const std::vector<double> neg{-1, 0, 0, -2};
    int rc[2];
    a.solve(neg.data(), 2, 2, rc);
    CHECK_EQ(rc[0], 0);
    CHECK_EQ(rc[1], 1);
    const std::vector<double> pos{1, 2, 3, 4};
    a.solve(pos.data(), 2, 2, rc);
    CHECK_EQ(rc[0], -1);
    CHECK_EQ(rc[1], -1);
}

struct Frame {
    std::vector<float> boxes, scores;
    std::vector<std::int32_t> cls;
    void add(float x1, float y1, float x2, float y2, float s, std::int32_t c = 0) {
        boxes.insert(boxes.end(), {x1, y1, x2, y2});
        scores.push_back(s);
        cls.push_back(c);
    }
};

std::vector<std::int64_t> step(track::ByteTracker& t, const Frame& f, std::int64_t steps = 1,
                               const track::MaskView* masks = nullptr) {
    std::vector<std::int64_t> ids(f.scores.size() + 1, 99);
    t.update(f.boxes.data(), f.scores.data(), f.cls.data(), std::int64_t(f.scores.size()), masks, steps, ids.data());
    ids.pop_back();
    return ids;
}

void test_tracker() {
    track::Config cfg;  // high 0.5, low 0.1, new 0.6, min_hits 2, lost_frames 30
    track::ByteTracker t(cfg);
    track::Snapshot snap;
    // A 50x100 box moving 2 px right per frame; a second object appears at frame 5.
    bool stable = true;
    for (int k = 0; k < 20; ++k) {
        Frame f;
        f.add(100.f + 2 * k, 100, 150.f + 2 * k, 200, 0.9f);
        if (k >= 5) f.add(400, 300, 440, 340, 0.8f, 1);
        const auto ids = step(t, f);
        if (k == 0) CHECK_EQ(ids, (std::vector<std::int64_t>{-1}));  // tentative: 1 hit of 2
        else if (k == 5) CHECK_EQ(ids, (std::vector<std::int64_t>{1, -1}));
        else if (k == 6) CHECK_EQ(ids, (std::vector<std::int64_t>{1, 2}));
        else if (k >= 1) stable &= ids[0] == 1 && (k < 6 || ids[1] == 2);
    }
    CHECK(stable);
    t.snapshot(snap);
    CHECK_EQ(snap.track_id, (std::vector<std::int64_t>{1, 2}));
    CHECK_EQ(snap.state, (std::vector<std::int32_t>{track::kTracked, track::kTracked}));
    CHECK_EQ(snap.class_id, (std::vector<std::int32_t>{0, 1}));
    CHECK_EQ(snap.hits, (std::vector<std::int64_t>{20, 15}));
    CHECK_EQ(snap.age, (std::vector<std::int64_t>{19, 14}));
    CHECK_EQ(snap.frames_since_update, (std::vector<std::int64_t>{0, 0}));
    if (snap.box.size() == 8) {
        CHECK_NEAR(snap.box[0], 138.0, 1.0);  // the last measurement (138, 100, 188, 200), Kalman-smoothed
        CHECK_NEAR(snap.box[2], 188.0, 1.0);
        CHECK_NEAR(snap.box[1], 100.0, 0.5);
        CHECK_NEAR(snap.box[3], 200.0, 0.5);
        CHECK_NEAR(snap.box[4], 400.0, 1e-6);  // a static box stays where it is
        CHECK_NEAR(snap.box[7], 340.0, 1e-6);
    }
    if (snap.score.size() == 2) CHECK_NEAR(snap.score[0], 0.9, 1e-6);

    // No detections for one frame: both tracks are lost and coasting; the constant-velocity model moves the first
    // one about 2 px. They come back (a low-score detection continues a track too) with the same ids.
    step(t, Frame{});
    t.snapshot(snap);
    CHECK_EQ(snap.state, (std::vector<std::int32_t>{track::kLost, track::kLost}));
    CHECK_EQ(snap.frames_since_update, (std::vector<std::int64_t>{1, 1}));
    if (snap.box.size() == 8) CHECK_NEAR(snap.box[0], 140.0, 1.0);
    {
        Frame f;
        f.add(142, 100, 192, 200, 0.9f);
        f.add(400, 300, 440, 340, 0.3f, 1);  // low score (0.1 <= s < 0.5)
        CHECK_EQ(step(t, f), (std::vector<std::int64_t>{1, 2}));
    }
    // A high detection of another class on top of track 1 does not take it; a 0.55 detection (high, but under
    // new_track_thresh 0.6) starts nothing.
    {
        Frame f;
        f.add(144, 100, 194, 200, 0.9f, 3);
        f.add(144, 100, 194, 200, 0.9f, 0);
        f.add(600, 10, 620, 30, 0.55f);
        CHECK_EQ(step(t, f), (std::vector<std::int64_t>{-1, 1, -1}));
        t.snapshot(snap);
        CHECK_EQ(snap.track_id.size(), std::size_t(3));  // 1, 2 (lost) and a tentative one for class 3
        CHECK_EQ(snap.state.size() == 3 ? snap.state[2] : -1, std::int32_t(track::kTentative));
    }
    // A gap of 31 frames (steps) is past lost_frames 30: everything is dropped; a new object gets id 3.
    step(t, Frame{}, 31);
    t.snapshot(snap);
    CHECK(snap.track_id.empty());
    {
        Frame f;
        f.add(10, 10, 30, 30, 0.9f);
        CHECK_EQ(step(t, f), (std::vector<std::int64_t>{-1}));
        CHECK_EQ(step(t, f), (std::vector<std::int64_t>{3}));
    }
    t.reset();
    t.snapshot(snap);
    CHECK(snap.track_id.empty());

    // min_hits 1: confirmed at birth, ids restart at 1 after reset.
    {
        track::Config c1;
        c1.min_hits = 1;
        track::ByteTracker t1(c1);
        Frame f;
        f.add(0, 0, 10, 10, 0.7f);
        f.add(50, 50, 60, 60, 0.65f);
        CHECK_EQ(step(t1, f), (std::vector<std::int64_t>{1, 2}));
        t1.reset();
        CHECK_EQ(step(t1, f), (std::vector<std::int64_t>{1, 2}));
    }

    // mask_weight 1: the similarity is the mask IoU alone. Same box, disjoint mask (left vs right half): no
    // match, a new track (id 2); the same mask: the same track.
    {
        track::Config cm;
        cm.min_hits = 1;
        cm.mask_weight = 1.0;
        for (int same = 0; same < 2; ++same) {
            track::ByteTracker tm(cm);
            Frame f;
            f.add(0, 0, 10, 10, 0.9f);
            const std::int32_t rect[4] = {0, 0, 10, 10};
            std::vector<std::uint8_t> left(100, 0), right(100, 0);
            for (int y = 0; y < 10; ++y)
                for (int x = 0; x < 10; ++x) (x < 5 ? left : right)[y * 10 + x] = 1;
            const std::int64_t off[2] = {0, 100};
            const track::MaskView m0{rect, left.data(), off};
            const track::MaskView m1{rect, same ? left.data() : right.data(), off};
            CHECK_EQ(step(tm, f, 1, &m0), (std::vector<std::int64_t>{1}));
            CHECK_EQ(step(tm, f, 1, &m1), (std::vector<std::int64_t>{same ? 1 : 2}));
        }
    }

    // Configuration checks.
    track::Config bad;
    bad.high_thresh = 1.5;
    CHECK_THROWS(track::check_config(bad), std::invalid_argument);
    bad = track::Config{};
    bad.low_thresh = 0.7;  // > high_thresh
    CHECK_THROWS(track::ByteTracker{bad}, std::invalid_argument);
    bad = track::Config{};
    bad.min_hits = 0;
    CHECK_THROWS(track::check_config(bad), std::invalid_argument);
    bad = track::Config{};
    bad.match_thresh = 1.0;  // [0, 1)
    CHECK_THROWS(track::check_config(bad), std::invalid_argument);
    bad = track::Config{};
    bad.lost_frames = -1;
    CHECK_THROWS(track::check_config(bad), std::invalid_argument);
    CHECK_NOTHROW(track::check_config(track::Config{}));
}

}  // namespace

int main() {
    test_letterbox_geometry();
    test_letterbox_into();
    test_decode();
    test_quantised_threshold();
    test_decode_split_reg_max1();
    test_decode_split_dfl();
    test_decode_split_quantised();
    test_nms();
    test_topk_pairs();
    test_masks_native();
    test_masks_input();
    test_polygons();
    test_dequantize();
    test_linear_assignment();
    test_tracker();
    std::printf("native core tests: %d checks, %d failed\n", g_checks, g_failed);
    return g_failed == 0 ? 0 : 1;
}
