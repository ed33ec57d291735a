// Python bindings for contour extraction over compact instance masks (polygons.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "common.hpp"
#include "polygons.hpp"

namespace py = pybind11;
using namespace edgeseg;

void bind_polygons(py::module_& m) {
    m.def(
        "polygons",
        [](const py::array& rects_in, const py::array& data_in, const py::array& offsets_in, bool all) {
            auto rects = require<int32_t>(rects_in, "rects");
            auto data = require<uint8_t>(data_in, "data");
            auto offsets = require<int64_t>(offsets_in, "offsets");
            if (rects.ndim() != 2 || rects.shape(1) != 4) fail("rects must have shape [n, 4], got " + shape_str(rects));
            if (data.ndim() != 1) fail("data must be 1-D, got " + shape_str(data));
            const py::ssize_t n = rects.shape(0);
            if (offsets.ndim() != 1 || offsets.shape(0) != n + 1)
                fail("offsets must have shape [" + std::to_string(n + 1) + "], got " + shape_str(offsets));
            const int32_t* r = rects.data();
            const int64_t* off = offsets.data();
            for (py::ssize_t i = 0; i < n; ++i) {
                const int64_t w = int64_t(r[4 * i + 2]) - r[4 * i], h = int64_t(r[4 * i + 3]) - r[4 * i + 1];
                if (w < 0 || h < 0) fail("rect " + std::to_string(i) + " has negative size");
                if (w > (1 << 30) || h > (1 << 30)) fail("rect " + std::to_string(i) + " is implausibly large");
                if (off[i] < 0 || off[i + 1] - off[i] != w * h || off[i + 1] > data.shape(0))
                    fail("offsets do not match rect " + std::to_string(i) + " and the data length");
            }

            std::vector<std::vector<polygons::Contour>> found(static_cast<size_t>(n));
            {
                py::gil_scoped_release release;
                const uint8_t* d = data.data();
                for (py::ssize_t i = 0; i < n; ++i) {
                    auto cs = polygons::external_contours(d + off[i], int(int64_t(r[4 * i + 3]) - r[4 * i + 1]),
                                                          int(int64_t(r[4 * i + 2]) - r[4 * i]), r[4 * i], r[4 * i + 1]);
                    if (!all && cs.size() > 1) {
                        const int k = polygons::largest_contour(cs);
                        std::vector<polygons::Contour> one;
                        one.push_back(std::move(cs[size_t(k)]));
                        cs.swap(one);
                    }
                    found[size_t(i)] = std::move(cs);
                }
            }

            py::list out;
            for (auto& cs : found) {
                py::list per;
                for (auto& c : cs) {
                    const py::ssize_t k = py::ssize_t(c.size() / 2);
                    py::array_t<float> a({k, py::ssize_t(2)});
                    float* dst = a.mutable_data();
                    for (size_t j = 0; j < c.size(); ++j) dst[j] = float(c[j]);
                    per.append(a);
                }
                out.append(per);
            }
            return out;
        },
        py::arg("rects"), py::arg("data"), py::arg("offsets"), py::arg("all") = false,
        "External contours per compact mask: list (per instance) of lists of float32 [k, 2] (x, y) arrays.");
}
