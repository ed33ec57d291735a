// Affine dequantisation of int8/uint8 tensors (LiteRT outputs): one vectorisable pass.
#include "quant.hpp"

namespace edgeseg {
namespace {

template <typename T>
void run(const T* src, std::size_t n, float scale, float zero_point, float* dst) {
    // (q - z) * s in float32, the same two roundings as numpy's (q.astype(float32) - z) * s.
    for (std::size_t i = 0; i < n; ++i) dst[i] = (static_cast<float>(src[i]) - zero_point) * scale;
}

}  // namespace

void dequantize(const std::int8_t* src, std::size_t n, float scale, float zero_point, float* dst) {
    run(src, n, scale, zero_point, dst);
}

void dequantize(const std::uint8_t* src, std::size_t n, float scale, float zero_point, float* dst) {
    run(src, n, scale, zero_point, dst);
}

}  // namespace edgeseg
