// libFuzzer harness: external_contours + largest_contour on any bitmap (empty, one pixel, nested rings) at
// any offset.
#include <stdexcept>

#include "fuzz_input.hpp"
#include "polygons.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const int h = int(in.range(0, 40)), w = int(in.range(0, 40));
    // Offsets: small, or the extremes a rect's int32 corner can have (the binding passes rect x0, y0).
    const bool extreme = in.flag();
    const int ox = extreme ? in.raw<std::int32_t>() : int(in.range(-50, 50));
    const int oy = extreme ? in.raw<std::int32_t>() : int(in.range(-50, 50));
    // Sparse or dense foreground: a density byte, then one byte per pixel.
    const std::uint8_t density = in.raw<std::uint8_t>();
    std::vector<std::uint8_t> bits = in.bytes(std::size_t(h) * w);
    for (auto& b : bits) b = b < density ? 1 : 0;
    bits.push_back(0);  // never a null pointer for an empty bitmap
    try {
        const auto contours = polygons::external_contours(bits.data(), h, w, ox, oy);
        polygons::largest_contour(contours);
    } catch (const std::invalid_argument&) {
        return 0;  // documented: coordinates past int32 are rejected
    }
    return 0;
}
