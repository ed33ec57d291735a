// Structured fuzz input for the native core's libFuzzer harnesses (tests/fuzz/core/fuzz_*.cpp).
//
// The harnesses call the core's C++ entry points with inputs that satisfy what the Python bindings check
// (shapes, sizes, finite scales: the documented contract of each kernel) and with adversarial values
// everywhere the bindings let them through: NaN/inf, huge and tiny numbers, boxes outside the frame,
// negative image strides, empty and one-pixel sizes. Input bytes run out gracefully (zeros after the end),
// so every byte string is a valid test case. Plain C++17: no clang-only header, so the same harnesses build
// with g++ (replay of the seed corpus, cross builds for ARM) and with clang++ -fsanitize=fuzzer.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace fuzz {

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

    template <class T>
    T raw() {
        T v{};
        const std::size_t k = i_ < n_ ? std::min(sizeof(T), n_ - i_) : 0;
        if (k) std::memcpy(&v, p_ + i_, k);
        i_ += sizeof(T);
        return v;
    }
    bool flag() { return raw<std::uint8_t>() & 1u; }
    // An integer in [lo, hi].
    std::int64_t range(std::int64_t lo, std::int64_t hi) {
        const std::uint64_t span = static_cast<std::uint64_t>(hi - lo) + 1u;
        const std::uint32_t v = raw<std::uint32_t>();
        return lo + static_cast<std::int64_t>(span ? v % span : v);
    }
    // A float that is often special (NaN, +-inf, huge, tiny, zero), else a plain value in about [-128, 128)
    // or the raw bits of the next four bytes.
    float value() {
        const std::uint8_t sel = raw<std::uint8_t>();
        switch (sel) {
            case 0: return std::numeric_limits<float>::quiet_NaN();
            case 1: return std::numeric_limits<float>::infinity();
            case 2: return -std::numeric_limits<float>::infinity();
            case 3: return std::numeric_limits<float>::max();
            case 4: return -std::numeric_limits<float>::max();
            case 5: return std::numeric_limits<float>::denorm_min();
            case 6: return 0.f;
            case 7: return -0.f;
            case 8: return raw<float>();
            default: return static_cast<float>(raw<std::int16_t>()) / 256.f;
        }
    }
    // value() with every non-finite result replaced (for inputs the bindings require to be finite).
    float finite() {
        const float v = value();
        return std::isfinite(v) ? v : 1.f;
    }
    // A positive finite scale (quantisation scales, strides).
    float positive() {
        const float v = std::fabs(finite());
        return v > 0.f ? v : 0.5f;
    }
    std::vector<float> values(std::size_t n, bool finite_only) {
        std::vector<float> v(n);
        for (auto& x : v) x = finite_only ? finite() : value();
        return v;
    }
    std::vector<std::uint8_t> bytes(std::size_t n) {
        std::vector<std::uint8_t> v(n);
        for (auto& x : v) x = raw<std::uint8_t>();
        return v;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t i_ = 0;
};

}  // namespace fuzz
