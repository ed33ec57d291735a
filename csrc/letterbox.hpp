// Letterbox: aspect-preserving resize + constant padding to the model input, in one pass.
#pragma once
#include <cstddef>
#include <cstdint>

namespace edgeseg {

struct LetterboxGeometry {
    double scale;  // r
    int pad_left, pad_top;
    int new_w, new_h;  // resized (unpadded) size
    int in_w, in_h;    // padded model input size
    int orig_w, orig_h;
};

// Ultralytics LetterBox geometry (center=True). Throws std::invalid_argument on bad sizes.
LetterboxGeometry letterbox_geometry(int orig_h, int orig_w, int target_h, int target_w, bool scaleup,
                                     bool auto_pad, int stride);

enum class OutLayout : int { NCHW = 0, NHWC = 1 };
enum class OutType : int { F32 = 0, U8 = 1, I8 = 2 };

// Source image: 3-channel uint8 with arbitrary (possibly negative) byte strides.
struct ImageView {
    const std::uint8_t* data;
    int h, w;
    std::ptrdiff_t row_stride, px_stride, ch_stride;
};

// Bilinear resize (cv2.INTER_LINEAR half-pixel convention, 11-bit fixed-point weights) of `src` into
// the geometry's unpadded area, constant `fill` elsewhere, optional BGR->RGB swap, written straight
// into `out` (C-contiguous, 1x3xHxW or 1xHxWx3 of the given type). No allocation beyond O(new_w) per
// band. threads: bands of rows resized in parallel (0 = automatic: several only for large frames).
void letterbox_into(const ImageView& src, const LetterboxGeometry& g, int fill, bool bgr_to_rgb,
                    OutLayout layout, OutType type, void* out, int threads = 0);

}  // namespace edgeseg
