// Python binding for dequantisation (edgeseg._core.dequantize, used by edgeseg.ops.quant).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "quant.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

py::array_t<float> py_dequantize(const py::array& q, double scale, double zero_point) {
    const bool i8 = q.dtype().equal(py::dtype::of<std::int8_t>());
    if (!i8 && !q.dtype().equal(py::dtype::of<std::uint8_t>()))
        fail("dequantize needs an int8 or uint8 array, got " + dtype_str(q));
    if (!(q.flags() & py::array::c_style)) fail("dequantize needs a C-contiguous array");
    if (!std::isfinite(scale) || scale <= 0.0) fail("scale must be a positive finite number");
    if (!std::isfinite(zero_point)) fail("zero_point must be finite");
    std::vector<py::ssize_t> shape(q.shape(), q.shape() + q.ndim());
    py::array_t<float> out(shape);
    const std::size_t n = static_cast<std::size_t>(q.size());
    float* dst = out.mutable_data();
    const float s = static_cast<float>(scale), z = static_cast<float>(zero_point);
    {
        py::gil_scoped_release nogil;
        if (i8)
            dequantize(static_cast<const std::int8_t*>(q.data()), n, s, z, dst);
        else
            dequantize(static_cast<const std::uint8_t*>(q.data()), n, s, z, dst);
    }
    return out;
}

}  // namespace

void bind_quant(py::module_& m) {
    m.def("dequantize", &py_dequantize, py::arg("q"), py::arg("scale"), py::arg("zero_point"),
          "(q - zero_point) * scale as float32, same shape; q int8/uint8, C-contiguous.");
}
