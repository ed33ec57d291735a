// Candidate decoding: class-score scan, class filter, non-finite rejection, top-k, gather.
#include "decode.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace edgeseg {
namespace {

constexpr std::int64_t kTile = 1024;  // anchors per tile of the [C,N] scan (running max stays in L1)

struct Entry {
    std::int32_t u;  // index into the used-anchor list
    std::int32_t cls;
    float score;
};

// Per-thread scratch buffers.
struct Scratch {
    std::vector<std::int32_t> anchor, arg;
    std::vector<float> best;
    std::vector<Entry> entries;
    std::vector<std::int32_t> used;  // used-anchor list: indices into `anchor`
    std::vector<float> raw;          // used*4 raw cx,cy,w,h
    std::vector<std::uint8_t> bad;
    std::vector<std::int32_t> order;
};

// Step 1: best class score per anchor; anchors with non-finite class scores are counted and skipped,
// anchors whose best score > conf are appended to s.anchor / s.best / s.arg (ascending anchor order).
void scan_cn(const float* data, std::int64_t N, const DecodeOptions& o, Scratch& s, std::int64_t& nonfinite) {
    alignas(64) float best[kTile];
    alignas(64) float chk[kTile];
    alignas(64) std::int32_t arg[kTile];
    std::int32_t hit[kTile];
    const float* sc = data + 4 * N;
    const float conf = o.conf;
    const std::int32_t nc = o.nc;
    for (std::int64_t n0 = 0; n0 < N; n0 += kTile) {
        const std::int64_t len = std::min(kTile, N - n0);
        const float* r = sc + n0;
        for (std::int64_t i = 0; i < len; ++i) {
            best[i] = r[i];
            chk[i] = r[i] * 0.f;
        }
        // Running max over contiguous rows; NaN/inf anywhere poisons chk (x * 0 is NaN for them).
        for (std::int32_t c = 1; c < nc; ++c) {
            r = sc + c * N + n0;
            for (std::int64_t i = 0; i < len; ++i) {
                const float v = r[i], b = best[i];
                best[i] = v > b ? v : b;
                chk[i] = chk[i] + v * 0.f;
            }
        }
        std::int64_t nhit = 0;
        for (std::int64_t i = 0; i < len; ++i) {
            if (chk[i] != 0.f)
                ++nonfinite;
            else if (best[i] > conf)
                hit[nhit++] = static_cast<std::int32_t>(i);
        }
        if (nhit == 0) continue;
        // Argmax (first class equal to the max; all scores are finite here). Dense tiles: one more
        // vectorised sweep over the (cache-hot) rows; sparse tiles: a short column walk per hit.
        if (nhit * 8 > len) {
            for (std::int64_t i = 0; i < len; ++i) arg[i] = nc - 1;
            for (std::int32_t c = nc - 2; c >= 0; --c) {
                r = sc + c * N + n0;
                for (std::int64_t i = 0; i < len; ++i) {
                    const std::int32_t m = -static_cast<std::int32_t>(r[i] == best[i]);
                    arg[i] = (c & m) | (arg[i] & ~m);
                }
            }
        } else {
            for (std::int64_t h = 0; h < nhit; ++h) {
                const std::int64_t i = hit[h];
                const float* col = sc + n0 + i;
                std::int32_t c = 0;
                while (c < nc - 1 && col[c * N] != best[i]) ++c;
                arg[i] = c;
            }
        }
        for (std::int64_t h = 0; h < nhit; ++h) {
            const std::int64_t i = hit[h];
            s.anchor.push_back(static_cast<std::int32_t>(n0 + i));
            s.best.push_back(best[i]);
            s.arg.push_back(arg[i]);
        }
    }
}

void scan_nc(const float* data, std::int64_t C, std::int64_t N, const DecodeOptions& o, Scratch& s,
             std::int64_t& nonfinite) {
    for (std::int64_t a = 0; a < N; ++a) {
        const float* p = data + a * C + 4;
        float b = p[0], k = p[0] * 0.f;
        std::int32_t g = 0;
        for (std::int32_t c = 1; c < o.nc; ++c) {
            const float v = p[c];
            if (v > b) {
                b = v;
                g = c;
            }
            k += v * 0.f;
        }
        if (k != 0.f) {
            ++nonfinite;
        } else if (b > o.conf) {
            s.anchor.push_back(static_cast<std::int32_t>(a));
            s.best.push_back(b);
            s.arg.push_back(g);
        }
    }
}

Scratch& scratch() {
    thread_local Scratch s;  // reused across calls on the same thread
    return s;
}

// True when any of v[0..n) is NaN or +-inf (exponent bits all ones); branch-free, vectorises.
bool any_nonfinite(const float* v, std::int64_t n) {
    std::uint32_t acc = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, v + i, sizeof bits);
        acc |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    return acc != 0;
}

}  // namespace

void decode_candidates(const float* data, std::int64_t C, std::int64_t N, bool cn, const DecodeOptions& o,
                       DecodeOutput& out) {
    Scratch& s = scratch();
    s.anchor.clear();
    s.best.clear();
    s.arg.clear();
    s.entries.clear();
    s.used.clear();
    out = DecodeOutput{};
    const std::int64_t nm = C - 4 - o.nc;
    auto at = [&](std::int64_t a, std::int64_t row) { return cn ? data[row * N + a] : data[a * C + row]; };

    if (cn)
        scan_cn(data, N, o, s, out.nonfinite);
    else
        scan_nc(data, C, N, o, s, out.nonfinite);

    // Step 2: (anchor, class) entries after the class filter; multi-label expands every class > conf.
    for (std::size_t j = 0; j < s.anchor.size(); ++j) {
        const auto u = static_cast<std::int32_t>(s.used.size());
        const std::size_t before = s.entries.size();
        if (!o.multi_label) {
            if (!o.keep || o.keep[s.arg[j]]) s.entries.push_back({u, s.arg[j], s.best[j]});
        } else {
            for (std::int32_t c = 0; c < o.nc; ++c) {
                const float v = at(s.anchor[j], 4 + c);
                if (v > o.conf && (!o.keep || o.keep[c])) s.entries.push_back({u, c, v});
            }
        }
        if (s.entries.size() != before) s.used.push_back(s.anchor[j]);  // now holds anchor ids
    }

    // Step 3: xyxy boxes and coefficients of used anchors (column walks: the rows they touch stay in
    // L1 across consecutive anchors); reject anchors with a non-finite box or coefficient.
    const std::size_t U = s.used.size();
    const std::int64_t cstep = cn ? N : 1;  // distance between consecutive channels of one anchor
    s.raw.resize(U * 4);
    s.bad.assign(U, 0);
    std::vector<float> coef(U * static_cast<std::size_t>(nm));  // becomes out.coefs when nothing is dropped
    for (std::size_t u = 0; u < U; ++u) {
        const float* col = cn ? data + s.used[u] : data + static_cast<std::int64_t>(s.used[u]) * C;
        const float cx = col[0], cy = col[cstep], w = col[2 * cstep], h = col[3 * cstep];
        const float* cf = col + (4 + o.nc) * cstep;
        float* dst = coef.data() + u * nm;
        for (std::int64_t m = 0; m < nm; ++m) dst[m] = cf[m * cstep];
        const float hw = w / 2.f, hh = h / 2.f;
        float* b = &s.raw[u * 4];
        b[0] = (cx - hw) * o.sx;
        b[1] = (cy - hh) * o.sy;
        b[2] = (cx + hw) * o.sx;
        b[3] = (cy + hh) * o.sy;
        const float box_vals[8] = {cx, cy, w, h, b[0], b[1], b[2], b[3]};
        if (any_nonfinite(box_vals, 8) || any_nonfinite(dst, nm)) {
            s.bad[u] = 1;
            ++out.nonfinite;
        }
    }
    s.entries.erase(std::remove_if(s.entries.begin(), s.entries.end(), [&](const Entry& e) { return s.bad[e.u]; }),
                    s.entries.end());

    // Step 4: keep the max_nms highest scores (ties: earlier entry wins), preserving entry order.
    const std::size_t total = s.entries.size();
    s.order.resize(total);
    for (std::size_t i = 0; i < total; ++i) s.order[i] = static_cast<std::int32_t>(i);
    if (o.max_nms >= 0 && total > static_cast<std::size_t>(o.max_nms)) {
        const auto k = static_cast<std::ptrdiff_t>(o.max_nms);
        auto better = [&](std::int32_t a, std::int32_t b) {
            const float sa = s.entries[a].score, sb = s.entries[b].score;
            return sa > sb || (sa == sb && a < b);
        };
        std::nth_element(s.order.begin(), s.order.begin() + k, s.order.end(), better);
        s.order.resize(k);
        std::sort(s.order.begin(), s.order.end());
    }

    // Step 5: materialise.
    const std::size_t K = s.order.size();
    out.boxes.resize(K * 4);
    out.scores.resize(K);
    out.class_ids.resize(K);
    out.anchors.resize(K);
    for (std::size_t i = 0; i < K; ++i) {
        const Entry& e = s.entries[s.order[i]];
        std::copy_n(&s.raw[e.u * 4], 4, &out.boxes[i * 4]);
        out.scores[i] = e.score;
        out.class_ids[i] = e.cls;
        out.anchors[i] = s.used[e.u];
    }
    // Hand over the coefficient block as it is when entry i is anchor u == i for every i. K == U is not
    // enough: a dropped (non-finite) anchor and a multi-label anchor with two entries also give K == U.
    bool identity = K == U;
    for (std::size_t i = 0; identity && i < K; ++i) identity = s.entries[s.order[i]].u == static_cast<std::int32_t>(i);
    if (identity) {
        out.coefs = std::move(coef);
    } else {
        out.coefs.resize(K * nm);
        for (std::size_t i = 0; i < K; ++i)
            std::copy_n(coef.data() + s.entries[s.order[i]].u * nm, nm, out.coefs.data() + i * nm);
    }
}

}  // namespace edgeseg
