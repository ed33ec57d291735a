#include <pybind11/pybind11.h>
namespace py = pybind11;
// Split-output (per-level raw head tensors) decoding: filled in by the TFLite/int8 work.
void bind_decode_split(py::module_& m) {}
