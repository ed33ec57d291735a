// External contours by border following (Suzuki & Abe, outer borders only).
//
// The bitmap is copied into a work image with a one-pixel background frame. Background connected
// (4-connectivity, the dual of 8-connected foreground) to that frame is marked "outside" first;
// an external border starts at a foreground pixel not yet traced whose left neighbour is outside
// -- the first pixel of its component in raster order. The border is followed counter-clockwise
// from there, and a point is emitted whenever the chain direction changes.
#include "polygons.hpp"

#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace edgeseg {
namespace polygons {
namespace {

enum : uint8_t { kBackground = 0, kForeground = 1, kOutside = 2, kTraced = 3 };

inline bool is_fg(uint8_t v) { return v == kForeground || v == kTraced; }

// Chain codes: 0 = +x, then counter-clockwise on screen (y grows downwards).
constexpr int kDx[8] = {1, 1, 0, -1, -1, -1, 0, 1};
constexpr int kDy[8] = {0, -1, -1, -1, 0, 1, 1, 1};

void mark_outside(std::vector<uint8_t>& img, int stride, int rows) {
    std::vector<int64_t> stack{0};
    img[0] = kOutside;
    const int64_t size = int64_t(stride) * rows;
    while (!stack.empty()) {
        const int64_t i = stack.back();
        stack.pop_back();
        const int64_t x = i % stride;
        const int64_t nb[4] = {x > 0 ? i - 1 : -1, x + 1 < stride ? i + 1 : -1, i - stride, i + stride};
        for (int64_t j : nb) {
            if (j >= 0 && j < size && img[size_t(j)] == kBackground) {
                img[size_t(j)] = kOutside;
                stack.push_back(j);
            }
        }
    }
}

Contour follow(std::vector<uint8_t>& img, int stride, int64_t start, int sx, int sy, int ox, int oy) {
    int64_t delta[16];
    for (int k = 0; k < 16; ++k) delta[k] = kDx[k & 7] + int64_t(kDy[k & 7]) * stride;
    Contour pts;
    auto emit = [&](int x, int y) {
        pts.push_back(x + ox);
        pts.push_back(y + oy);
    };

    // Look clockwise around the start, beginning after its (background) left neighbour.
    int s = 4;
    int64_t i1 = start;
    bool found = false;
    for (int k = 0; k < 8; ++k) {
        s = (s - 1) & 7;
        i1 = start + delta[s];
        if (is_fg(img[size_t(i1)])) {
            found = true;
            break;
        }
    }
    if (!found) {  // isolated pixel
        img[size_t(start)] = kTraced;
        emit(sx, sy);
        return pts;
    }

    int64_t i3 = start;
    int prev = s ^ 4;
    int x = sx, y = sy;
    for (;;) {
        // Next border pixel: counter-clockwise from the direction we came from.
        int64_t i4 = i3;
        for (;;) {
            i4 = i3 + delta[++s];
            if (is_fg(img[size_t(i4)])) break;
        }
        s &= 7;
        img[size_t(i3)] = kTraced;
        if (s != prev) {
            emit(x, y);
            prev = s;
        }
        x += kDx[s];
        y += kDy[s];
        if (i4 == start && i3 == i1) break;
        i3 = i4;
        s = (s + 4) & 7;
    }
    return pts;
}

}  // namespace

std::vector<Contour> external_contours(const uint8_t* bits, int h, int w, int ox, int oy) {
    std::vector<Contour> out;
    if (h <= 0 || w <= 0) return out;
    // Every emitted coordinate (x + ox in [ox, ox + w), likewise y) must be an int32; found by fuzzing
    // (tests/fuzz/core/fuzz_polygons.cpp): a rect at x0 = 2^31 - 1 overflowed.
    constexpr int64_t kMax = std::numeric_limits<int32_t>::max(), kMin = std::numeric_limits<int32_t>::min();
    if (h > (1 << 30) || w > (1 << 30) || int64_t(ox) + w > kMax || int64_t(oy) + h > kMax || ox < kMin + 1 ||
        oy < kMin + 1)
        throw std::invalid_argument("bitmap offset and size do not fit 32-bit pixel coordinates");
    const int stride = w + 2, rows = h + 2;
    std::vector<uint8_t> img(size_t(stride) * rows, kBackground);
    bool any = false;
    for (int y = 0; y < h; ++y) {
        const uint8_t* src = bits + size_t(y) * w;
        uint8_t* dst = img.data() + size_t(y + 1) * stride + 1;
        for (int x = 0; x < w; ++x) {
            dst[x] = src[x] != 0;
            any |= src[x] != 0;
        }
    }
    if (!any) return out;
    mark_outside(img, stride, rows);
    for (int y = 1; y <= h; ++y) {
        const int64_t row = int64_t(y) * stride;
        for (int x = 1; x <= w; ++x) {
            const int64_t i = row + x;
            if (img[size_t(i)] == kForeground && img[size_t(i - 1)] == kOutside)
                out.push_back(follow(img, stride, i, x - 1, y - 1, ox, oy));
        }
    }
    return out;
}

int largest_contour(const std::vector<Contour>& contours) {
    int best = -1;
    size_t best_n = 0;
    double best_area = -1;
    for (size_t c = 0; c < contours.size(); ++c) {
        const Contour& p = contours[c];
        const size_t n = p.size() / 2;
        if (best >= 0 && n < best_n) continue;
        double twice = 0;  // shoelace
        for (size_t k = 0; k < n; ++k) {
            const size_t j = (k + 1) % n;
            twice += double(p[2 * k]) * p[2 * j + 1] - double(p[2 * j]) * p[2 * k + 1];
        }
        const double area = std::abs(twice) / 2;
        if (best < 0 || n > best_n || area > best_area) {
            best = int(c);
            best_n = n;
            best_area = area;
        }
    }
    return best;
}

}  // namespace polygons
}  // namespace edgeseg
