// libFuzzer harness: letterbox_geometry + letterbox_into (any image size and byte strides, any target).
#include <stdexcept>

#include "fuzz_input.hpp"
#include "letterbox.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const int h = int(in.range(1, 48)), w = int(in.range(1, 48));
    const int th = int(in.range(-2, 130)), tw = int(in.range(-2, 130));
    const bool scaleup = in.flag(), auto_pad = in.flag();
    const int stride = int(in.range(-1, 64));
    LetterboxGeometry g{};
    try {
        g = letterbox_geometry(h, w, th, tw, scaleup, auto_pad, stride);
    } catch (const std::invalid_argument&) {
        return 0;  // documented: bad sizes are rejected
    }
    const int fill = int(in.range(0, 255));
    const bool swap = in.flag();
    const auto layout = static_cast<OutLayout>(in.range(0, 1));
    const auto type = static_cast<OutType>(in.range(0, 2));
    const int threads = int(in.range(0, 3));
    // The image: h*w*3 bytes viewed in one of several memory orders, with negative strides as numpy's
    // flipped views have them.
    std::vector<std::uint8_t> pixels = in.bytes(std::size_t(h) * w * 3);
    ImageView src{pixels.data(), h, w, std::ptrdiff_t(w) * 3, 3, 1};
    switch (in.range(0, 4)) {
        case 1:  // rows flipped (img[::-1])
            src.data = pixels.data() + std::ptrdiff_t(h - 1) * w * 3;
            src.row_stride = -std::ptrdiff_t(w) * 3;
            break;
        case 2:  // columns flipped and channels reversed (img[:, ::-1, ::-1])
            src.data = pixels.data() + std::ptrdiff_t(w - 1) * 3 + 2;
            src.px_stride = -3;
            src.ch_stride = -1;
            break;
        case 3:  // transposed storage (a w x h image's .transpose(1, 0, 2))
            src.row_stride = 3;
            src.px_stride = std::ptrdiff_t(h) * 3;
            break;
        case 4:  // planar (CHW storage seen as HWC)
            src.row_stride = w;
            src.px_stride = 1;
            src.ch_stride = std::ptrdiff_t(h) * w;
            break;
        default: break;
    }
    const std::size_t elem = type == OutType::F32 ? 4 : 1;
    std::vector<std::uint8_t> out(std::size_t(g.in_h) * g.in_w * 3 * elem);
    letterbox_into(src, g, fill, swap, layout, type, out.data(), threads);
    return 0;
}
