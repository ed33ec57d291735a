// libFuzzer harness: masks_native and masks_input (CHW and HWC prototypes, boxes anywhere or NaN, coefficients
// NaN/inf, every consistent letterbox geometry, threads).
#include <stdexcept>

#include "fuzz_input.hpp"
#include "masks.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    masks::ProtoMap p{};
    p.nm = int(in.range(1, 6));
    p.mh = int(in.range(1, 24));
    p.mw = int(in.range(1, 24));
    p.hwc = in.flag();
    const std::int64_t n = in.range(0, 6);
    const int threads = int(in.range(0, 2));
    const int orig_h = int(in.range(1, 96)), orig_w = int(in.range(1, 96));
    const std::vector<float> protos = in.values(std::size_t(p.nm) * p.mh * p.mw, false);
    p.data = protos.data();
    const std::vector<float> coefs = in.values(std::size_t(n * p.nm), false);
    std::vector<float> boxes = in.values(std::size_t(n * 4), false);
    for (auto& b : boxes) b *= 0.75f;  // values around the frame's size, inside and outside
    try {
        if (in.flag()) {
            masks::masks_native(p, coefs.data(), boxes.data(), n, orig_h, orig_w, threads);
        } else {
            masks::InputGeometry g{};
            g.in_h = int(in.range(1, 96));
            g.in_w = int(in.range(1, 96));
            g.new_w = int(in.range(1, g.in_w));
            g.new_h = int(in.range(1, g.in_h));
            g.pad_left = int(in.range(0, g.in_w - g.new_w));
            g.pad_top = int(in.range(0, g.in_h - g.new_h));
            g.orig_h = orig_h;
            g.orig_w = orig_w;
            masks::masks_input(p, coefs.data(), boxes.data(), n, g, threads);
        }
    } catch (const std::invalid_argument&) {
        return 0;  // documented: bad geometry is rejected
    }
    return 0;
}
