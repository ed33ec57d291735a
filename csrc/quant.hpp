// Affine int8/uint8 dequantisation: real = (q - zero_point) * scale, in float32.
#pragma once
#include <cstddef>
#include <cstdint>

namespace edgeseg {

void dequantize(const std::int8_t* src, std::size_t n, float scale, float zero_point, float* dst);
void dequantize(const std::uint8_t* src, std::size_t n, float scale, float zero_point, float* dst);

}  // namespace edgeseg
