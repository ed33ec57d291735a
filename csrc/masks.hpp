// Instance masks from YOLO-seg prototypes, computed only inside each instance's region.
//
// Pure C++ (no Python types): the binding in bind_masks.cpp validates arrays and calls these.
#pragma once
#include <cstdint>
#include <vector>

namespace edgeseg {
namespace masks {

// Prototype tensor view: [nm, mh, mw] ("chw") or [mh, mw, nm] ("hwc"), float32, C-contiguous.
struct ProtoMap {
    const float* data;
    int nm, mh, mw;
    bool hwc;
};

// Letterbox geometry needed to map model-input pixels back to original pixels.
struct InputGeometry {
    int in_h, in_w;       // model input size
    int pad_left, pad_top;
    int new_w, new_h;     // resized (unpadded) image size inside the input
    int orig_h, orig_w;   // original image size
};

// Compact result: per instance an integer rectangle and a 0/1 bitmap covering it.
struct MaskOutput {
    std::vector<int32_t> rects;    // 4 per instance: x0, y0, x1, y1 (exclusive)
    std::vector<uint8_t> bits;     // concatenated row-major bitmaps
    std::vector<int64_t> offsets;  // n + 1 start offsets into bits
    int64_t nonfinite = 0;         // returned pixels whose logit was NaN/inf (set to background)
};

// Ultralytics process_mask_native semantics (retina masks) at original resolution.
// boxes: [n,4] xyxy in original pixels. Throws std::invalid_argument on bad geometry.
MaskOutput masks_native(const ProtoMap& p, const float* coefs, const float* boxes, int64_t n, int orig_h,
                        int orig_w, int threads);

// Ultralytics process_mask semantics (crop at proto scale, upsample to input size, > 0),
// then nearest sampling back to original pixels. boxes: [n,4] xyxy in model-input pixels.
MaskOutput masks_input(const ProtoMap& p, const float* coefs, const float* boxes, int64_t n,
                       const InputGeometry& g, int threads);

}  // namespace masks
}  // namespace edgeseg
