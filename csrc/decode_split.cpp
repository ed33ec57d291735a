// Split-output decoding: quantised-domain class scan, DFL box decode of candidates only.
#include "decode_split.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace edgeseg {
namespace {

struct Entry {
    std::int32_t u;  // index into the used-candidate list
    std::int32_t cls;
    float score;
};

inline float sigmoidf(float x) { return 1.f / (1.f + std::exp(-x)); }

template <typename T>
inline float deq(T v, const QTensor& t) {
    return (static_cast<float>(v) - static_cast<float>(t.zero_point)) * t.scale;
}

// Threshold in the tensor's own domain: q > thr. For float tensors thr = logit(conf).
template <typename T>
float domain_threshold(double conf, const QTensor& t) {
    if (std::is_floating_point<T>::value) {
        if (conf <= 0.0) return -std::numeric_limits<float>::infinity();
        if (conf >= 1.0) return std::numeric_limits<float>::infinity();
        return static_cast<float>(std::log(conf / (1.0 - conf)));
    }
    return static_cast<float>(quantised_threshold(conf, t.scale, t.zero_point));
}

// Value of channel c at anchor a of a level tensor ([HW, C] or [C, HW]).
template <typename T>
inline T at(const T* p, std::int64_t a, std::int64_t c, std::int64_t C, std::int64_t HW, bool cn) {
    return cn ? p[c * HW + a] : p[a * C + c];
}

// DFL expectation for the 4 sides of anchor a -> xyxy in pixels. Returns false on a non-finite value.
template <typename T>
bool box_of(const SplitLevel& L, const SplitOptions& o, std::int64_t a, float* xyxy, float* cxcywh) {
    const T* p = static_cast<const T*>(L.box.data);
    const std::int64_t HW = L.h * L.w, C = 4 * o.reg_max;
    float d[4];
    float buf[64];
    std::vector<float> big;
    float* v = buf;
    if (o.reg_max > 64) {
        big.resize(o.reg_max);
        v = big.data();
    }
    for (int s = 0; s < 4; ++s) {
        if (o.reg_max == 1) {  // no distribution (YOLO26): the channel is the distance itself
            d[s] = deq<T>(at(p, a, s, C, HW, o.cn), L.box);
            continue;
        }
        float mx = -std::numeric_limits<float>::infinity();
        for (int j = 0; j < o.reg_max; ++j) {
            v[j] = deq<T>(at(p, a, s * o.reg_max + j, C, HW, o.cn), L.box);
            mx = std::max(mx, v[j]);
        }
        float den = 0.f, num = 0.f;
        for (int j = 0; j < o.reg_max; ++j) {
            const float e = std::exp(v[j] - mx);
            den += e;
            num += e * static_cast<float>(j);
        }
        d[s] = num / den;
    }
    const float ax = static_cast<float>(a % L.w) + 0.5f, ay = static_cast<float>(a / L.w) + 0.5f;
    const float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
    const float cx = (x1 + x2) / 2.f * L.stride, cy = (y1 + y2) / 2.f * L.stride;
    const float w = (x2 - x1) * L.stride, h = (y2 - y1) * L.stride;
    if (cxcywh) {
        cxcywh[0] = cx, cxcywh[1] = cy, cxcywh[2] = w, cxcywh[3] = h;
    }
    if (xyxy) {
        xyxy[0] = cx - w / 2.f, xyxy[1] = cy - h / 2.f, xyxy[2] = cx + w / 2.f, xyxy[3] = cy + h / 2.f;
    }
    bool ok = std::isfinite(cx) && std::isfinite(cy) && std::isfinite(w) && std::isfinite(h);
    return ok;
}

struct Cand {
    std::int32_t level;
    std::int64_t a;       // anchor within the level
    std::int32_t anchor;  // global anchor index
    std::int32_t cls;
    float raw_best;       // best class value in the tensor's domain
};

template <typename T>
void run_candidates(const std::vector<SplitLevel>& levels, const SplitOptions& o, DecodeOutput& out) {
    out = DecodeOutput{};
    std::vector<Cand> cands;
    std::int64_t offset = 0;
    const bool is_float = std::is_floating_point<T>::value;
    for (std::size_t li = 0; li < levels.size(); ++li) {
        const SplitLevel& L = levels[li];
        const T* cls = static_cast<const T*>(L.cls.data);
        const std::int64_t HW = L.h * L.w;
        const float thr = domain_threshold<T>(o.conf, L.cls);
        if (!is_float && !o.cn) {
            // Quantised [HW, nc]: a branch-free max over each anchor's classes (vectorised), the argmax
            // only for the few anchors above the threshold. Same result as the loop below (first max).
            for (std::int64_t a = 0; a < HW; ++a) {
                const T* row = cls + a * o.nc;
                T best = row[0];
                for (std::int32_t c = 1; c < o.nc; ++c) best = std::max(best, row[c]);
                if (!(static_cast<float>(best) > thr)) continue;
                const std::int32_t arg = static_cast<std::int32_t>(std::find(row, row + o.nc, best) - row);
                cands.push_back({static_cast<std::int32_t>(li), a, static_cast<std::int32_t>(offset + a), arg,
                                 static_cast<float>(best)});
            }
            offset += HW;
            continue;
        }
        for (std::int64_t a = 0; a < HW; ++a) {
            T best = at(cls, a, 0, o.nc, HW, o.cn);
            std::int32_t arg = 0;
            bool bad = is_float && !std::isfinite(static_cast<float>(best));
            for (std::int32_t c = 1; c < o.nc; ++c) {
                const T v = at(cls, a, c, o.nc, HW, o.cn);
                if (is_float && !std::isfinite(static_cast<float>(v))) bad = true;
                if (v > best) {
                    best = v;
                    arg = c;
                }
            }
            if (bad) {
                ++out.nonfinite;
                continue;
            }
            if (static_cast<float>(best) > thr)
                cands.push_back({static_cast<std::int32_t>(li), a, static_cast<std::int32_t>(offset + a), arg,
                                 static_cast<float>(best)});
        }
        offset += HW;
    }

    // (candidate, class) entries after the class filter; multi-label: every class above the threshold.
    std::vector<Entry> entries;
    std::vector<std::int32_t> used;  // indices into cands
    for (std::size_t j = 0; j < cands.size(); ++j) {
        const Cand& k = cands[j];
        const SplitLevel& L = levels[k.level];
        const auto u = static_cast<std::int32_t>(used.size());
        const std::size_t before = entries.size();
        if (!o.multi_label) {
            if (!o.keep || o.keep[k.cls]) {
                const T q = static_cast<T>(k.raw_best);
                entries.push_back({u, k.cls, sigmoidf(deq<T>(q, L.cls))});
            }
        } else {
            const T* cls = static_cast<const T*>(L.cls.data);
            const float thr = domain_threshold<T>(o.conf, L.cls);
            const std::int64_t HW = L.h * L.w;
            for (std::int32_t c = 0; c < o.nc; ++c) {
                const T v = at(cls, k.a, c, o.nc, HW, o.cn);
                if (static_cast<float>(v) > thr && (!o.keep || o.keep[c]))
                    entries.push_back({u, c, sigmoidf(deq<T>(v, L.cls))});
            }
        }
        if (entries.size() != before) used.push_back(static_cast<std::int32_t>(j));
    }

    // Boxes and coefficients of used candidates; non-finite ones are dropped and counted.
    const std::size_t U = used.size();
    const int nm = o.nm;
    std::vector<float> boxes(U * 4), coefs(U * static_cast<std::size_t>(nm));
    std::vector<std::uint8_t> badu(U, 0);
    for (std::size_t u = 0; u < U; ++u) {
        const Cand& k = cands[used[u]];
        const SplitLevel& L = levels[k.level];
        bool ok = box_of<T>(L, o, k.a, &boxes[u * 4], nullptr);
        const T* cf = static_cast<const T*>(L.coef.data);
        const std::int64_t HW = L.h * L.w;
        for (int m = 0; m < nm; ++m) {
            const float v = deq<T>(at(cf, k.a, m, nm, HW, o.cn), L.coef);
            coefs[u * nm + m] = v;
            if (!std::isfinite(v)) ok = false;
        }
        for (int i = 0; i < 4; ++i)
            if (!std::isfinite(boxes[u * 4 + i])) ok = false;
        if (!ok) {
            badu[u] = 1;
            ++out.nonfinite;
        }
    }
    entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const Entry& e) { return badu[e.u]; }),
                  entries.end());

    // Top max_nms scores (ties: earlier entry), original order kept.
    std::vector<std::int32_t> order(entries.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int32_t>(i);
    if (o.max_nms >= 0 && order.size() > static_cast<std::size_t>(o.max_nms)) {
        const auto kk = static_cast<std::ptrdiff_t>(o.max_nms);
        auto better = [&](std::int32_t a, std::int32_t b) {
            const float sa = entries[a].score, sb = entries[b].score;
            return sa > sb || (sa == sb && a < b);
        };
        std::nth_element(order.begin(), order.begin() + kk, order.end(), better);
        order.resize(kk);
        std::sort(order.begin(), order.end());
    }
    const std::size_t K = order.size();
    out.boxes.resize(K * 4);
    out.scores.resize(K);
    out.class_ids.resize(K);
    out.anchors.resize(K);
    out.coefs.resize(K * nm);
    for (std::size_t i = 0; i < K; ++i) {
        const Entry& e = entries[order[i]];
        std::copy_n(&boxes[e.u * 4], 4, &out.boxes[i * 4]);
        std::copy_n(coefs.data() + static_cast<std::size_t>(e.u) * nm, nm, out.coefs.data() + i * nm);
        out.scores[i] = e.score;
        out.class_ids[i] = e.cls;
        out.anchors[i] = cands[used[e.u]].anchor;
    }
}

template <typename T>
void run_dense(const std::vector<SplitLevel>& levels, const SplitOptions& o, float* out) {
    std::int64_t N = 0;
    for (const auto& L : levels) N += L.h * L.w;
    std::int64_t offset = 0;
    for (const auto& L : levels) {
        const std::int64_t HW = L.h * L.w;
        const T* cls = static_cast<const T*>(L.cls.data);
        const T* cf = static_cast<const T*>(L.coef.data);
        for (std::int64_t a = 0; a < HW; ++a) {
            const std::int64_t g = offset + a;
            float b[4];
            box_of<T>(L, o, a, nullptr, b);
            for (int i = 0; i < 4; ++i) out[i * N + g] = b[i];
            for (int c = 0; c < o.nc; ++c) out[(4 + c) * N + g] = sigmoidf(deq<T>(at(cls, a, c, o.nc, HW, o.cn), L.cls));
            for (int m = 0; m < o.nm; ++m)
                out[(4 + o.nc + m) * N + g] = deq<T>(at(cf, a, m, o.nm, HW, o.cn), L.coef);
        }
        offset += HW;
    }
}

}  // namespace

double quantised_threshold(double conf, double scale, double zero_point) {
    if (conf <= 0.0) return -1e30;
    if (conf >= 1.0) return 1e30;
    return std::floor(std::log(conf / (1.0 - conf)) / scale + zero_point);
}

void decode_split_candidates(const std::vector<SplitLevel>& levels, const SplitOptions& o, DecodeOutput& out) {
    switch (o.dtype) {
        case SplitDType::F32: run_candidates<float>(levels, o, out); break;
        case SplitDType::I8: run_candidates<std::int8_t>(levels, o, out); break;
        case SplitDType::U8: run_candidates<std::uint8_t>(levels, o, out); break;
    }
}

void decode_split_dense(const std::vector<SplitLevel>& levels, const SplitOptions& o, float* out) {
    switch (o.dtype) {
        case SplitDType::F32: run_dense<float>(levels, o, out); break;
        case SplitDType::I8: run_dense<std::int8_t>(levels, o, out); break;
        case SplitDType::U8: run_dense<std::uint8_t>(levels, o, out); break;
    }
}

}  // namespace edgeseg
