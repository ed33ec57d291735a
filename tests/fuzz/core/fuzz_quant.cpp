// libFuzzer harness: dequantize (int8 and uint8, any positive scale and finite zero point).
#include "fuzz_input.hpp"
#include "quant.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const float scale = in.positive(), zero = in.finite();
    const std::size_t n = std::size_t(in.range(0, 300));
    const std::vector<std::uint8_t> q = in.bytes(n + 1);
    std::vector<float> out(n + 1);
    if (in.flag())
        dequantize(reinterpret_cast<const std::int8_t*>(q.data()), n, scale, zero, out.data());
    else
        dequantize(q.data(), n, scale, zero, out.data());
    return 0;
}
