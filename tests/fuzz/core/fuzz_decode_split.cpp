// libFuzzer harness: decode_split_candidates / decode_split_dense / quantised_threshold over float, int8 and
// uint8 split heads (DFL and reg_max 1), NCHW and NHWC, any zero point, NaN/inf in float heads.
#include "decode_split.hpp"
#include "fuzz_input.hpp"

using namespace edgeseg;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    SplitOptions o;
    o.nc = int(in.range(1, 5));
    o.nm = int(in.range(0, 4));
    o.reg_max = in.flag() ? 1 : int(in.range(1, 17));
    o.dtype = static_cast<SplitDType>(in.range(0, 2));
    o.cn = in.flag();
    o.conf = in.finite();
    o.multi_label = in.flag();
    o.max_nms = in.range(0, 64);
    std::vector<std::uint8_t> keep;
    if (in.flag()) {
        keep = in.bytes(std::size_t(o.nc));
        o.keep = keep.data();
    }
    const int nlevels = int(in.range(1, 3));
    std::vector<SplitLevel> levels(static_cast<std::size_t>(nlevels));
    std::vector<std::vector<std::uint8_t>> storage;
    const std::size_t elem = o.dtype == SplitDType::F32 ? 4 : 1;
    std::int64_t N = 0;
    auto tensor = [&](std::int64_t count) {
        QTensor t;
        if (o.dtype == SplitDType::F32) {
            std::vector<float> f = in.values(std::size_t(count), false);
            storage.emplace_back(reinterpret_cast<const std::uint8_t*>(f.data()),
                                 reinterpret_cast<const std::uint8_t*>(f.data()) + f.size() * elem);
        } else {
            storage.push_back(in.bytes(std::size_t(count)));
            t.scale = in.positive();
            t.zero_point = in.raw<std::int32_t>() % 512;
        }
        storage.back().resize(std::size_t(count) * elem + 1);  // never a null pointer for an empty tensor
        t.data = storage.back().data();
        return t;
    };
    for (auto& L : levels) {
        L.h = in.range(1, 6);
        L.w = in.range(1, 6);
        L.stride = in.positive();
        const std::int64_t hw = L.h * L.w;
        N += hw;
        L.box = tensor(hw * 4 * o.reg_max);
        L.cls = tensor(hw * o.nc);
        L.coef = tensor(hw * o.nm);
    }
    DecodeOutput out;
    decode_split_candidates(levels, o, out);
    std::vector<float> dense(std::size_t((4 + o.nc + o.nm) * N));
    decode_split_dense(levels, o, dense.data());
    const double q = quantised_threshold(double(in.value()), double(in.positive()), double(in.raw<std::int32_t>()));
    (void)q;
    return 0;
}
