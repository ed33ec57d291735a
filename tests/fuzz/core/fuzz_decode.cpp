// libFuzzer harness: decode_candidates ([C,N] and [N,C] heads, NaN/inf anywhere, any conf, keep flags).
#include "decode.hpp"
#include "fuzz_input.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    DecodeOptions o;
    o.nc = int(in.range(1, 8));
    const std::int64_t nm = in.range(0, 6);
    const std::int64_t C = 4 + o.nc + nm + in.range(0, 1);  // the bindings allow extra channels
    const std::int64_t N = in.range(0, 80);
    const bool cn = in.flag();
    o.conf = in.finite();
    o.multi_label = in.flag();
    o.max_nms = in.range(0, 100);
    o.sx = in.finite();
    o.sy = in.finite();
    std::vector<std::uint8_t> keep;
    if (in.flag()) {
        keep = in.bytes(std::size_t(o.nc));
        o.keep = keep.data();
    }
    const std::vector<float> head = in.values(std::size_t(C * N), false);
    DecodeOutput out;
    decode_candidates(head.data(), C, N, cn, o, out);
    return 0;
}
