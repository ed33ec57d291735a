// Python binding for candidate decoding (edgeseg._core.decode, used by edgeseg.ops.decode).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common.hpp"
#include "decode.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

py::tuple py_decode(const py::array& output, int nc, double conf, bool multi_label, std::int64_t max_nms,
                    const py::object& keep_obj, bool cn, double sx, double sy) {
    if (output.ndim() != 2) fail("output must be a 2-D [C,N] or [N,C] array, got shape " + shape_str(output));
    auto arr = require<float>(output, "output");
    if (nc < 1) fail("nc must be >= 1, got " + std::to_string(nc));
    const std::int64_t C = cn ? arr.shape(0) : arr.shape(1);
    const std::int64_t N = cn ? arr.shape(1) : arr.shape(0);
    if (C < 4 + static_cast<std::int64_t>(nc))
        fail("output has " + std::to_string(C) + " channels per anchor, need at least 4 + nc = " +
             std::to_string(4 + nc) + " (shape " + shape_str(output) + ", layout " + (cn ? "cn" : "nc") + ")");
    if (N > std::numeric_limits<std::int32_t>::max()) fail("too many anchors: " + std::to_string(N));
    if (!std::isfinite(conf)) fail("conf must be finite");
    if (max_nms < 0) fail("max_nms must be >= 0, got " + std::to_string(max_nms));
    if (!std::isfinite(sx) || !std::isfinite(sy)) fail("box_scale must be finite");

    py::array_t<std::uint8_t, py::array::c_style> keep;
    DecodeOptions o;
    o.nc = nc;
    o.conf = static_cast<float>(conf);
    o.multi_label = multi_label;
    o.max_nms = max_nms;
    o.sx = static_cast<float>(sx);
    o.sy = static_cast<float>(sy);
    if (!keep_obj.is_none()) {
        if (!py::isinstance<py::array>(keep_obj)) fail("keep must be a uint8 numpy array or None");
        keep = require<std::uint8_t>(py::reinterpret_borrow<py::array>(keep_obj), "keep");
        if (keep.ndim() != 1 || keep.shape(0) != nc)
            fail("keep must be a uint8 array of length nc=" + std::to_string(nc) + ", got shape " + shape_str(keep));
        o.keep = keep.data();
    }

    DecodeOutput r;
    const float* data = arr.data();
    {
        py::gil_scoped_release nogil;
        decode_candidates(data, C, N, cn, o, r);
    }
    const auto k = static_cast<py::ssize_t>(r.scores.size());
    const auto nm = static_cast<py::ssize_t>(C - 4 - nc);
    return py::make_tuple(to_array(std::move(r.boxes), {k, 4}), to_array(std::move(r.scores), {k}),
                          to_array(std::move(r.class_ids), {k}), to_array(std::move(r.anchors), {k}),
                          to_array(std::move(r.coefs), {k, nm}), r.nonfinite);
}

}  // namespace

void bind_decode(py::module_& m) {
    m.def("decode", &py_decode, py::arg("output"), py::arg("nc"), py::arg("conf") = 0.25,
          py::arg("multi_label") = false, py::arg("max_nms") = 30000, py::arg("keep") = py::none(),
          py::arg("cn") = true, py::arg("sx") = 1.0, py::arg("sy") = 1.0,
          "Decode candidates from a 2-D float32 head output. Returns "
          "(boxes, scores, class_ids, anchors, coefs, nonfinite).");
}
