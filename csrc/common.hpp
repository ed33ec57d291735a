// Shared helpers for argument validation in the native core.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace edgeseg {
namespace py = pybind11;

// pybind11 maps std::invalid_argument to ValueError.
[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

inline std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Require a C-contiguous array of dtype T (no silent conversion of other dtypes).
template <typename T>
py::array_t<T, py::array::c_style> require(const py::array& a, const char* name) {
    if (!a.dtype().equal(py::dtype::of<T>())) {
        fail(std::string(name) + " must have dtype " + py::str(py::dtype::of<T>()).cast<std::string>() +
             ", got " + dtype_str(a));
    }
    return py::array_t<T, py::array::c_style>::ensure(a);
}

// Hands a vector's storage to numpy without copying (an empty vector gives an empty array of `shape`).
template <typename T>
py::array_t<T> to_array(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    if (v.empty()) return py::array_t<T>(shape);
    auto* owner = new std::vector<T>(std::move(v));
    py::capsule cap(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, owner->data(), cap);
}

}  // namespace edgeseg
