// Outer contours of binary bitmaps (border following, 8-connected foreground).
//
// Pure C++ (no Python types): bind_polygons.cpp validates arrays and calls these.
#pragma once
#include <cstdint>
#include <vector>

namespace edgeseg {
namespace polygons {

// One contour: flat (x, y) pairs of border pixel coordinates, compressed to the end points of
// horizontal, vertical and diagonal runs (the CHAIN_APPROX_SIMPLE convention).
using Contour = std::vector<int32_t>;

// External contours of the h x w bitmap (any non-zero byte is foreground), in raster order of
// their first pixel. Components inside holes of other components are not external and are skipped;
// holes themselves are not reported. x, y are offset by (ox, oy).
// Throws std::invalid_argument when an offset coordinate would not fit an int32.
std::vector<Contour> external_contours(const uint8_t* bits, int h, int w, int ox, int oy);

// Index of the contour with the most points; ties go to the larger enclosed area, then the first.
// Returns -1 for an empty list.
int largest_contour(const std::vector<Contour>& contours);

}  // namespace polygons
}  // namespace edgeseg
