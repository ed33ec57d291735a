// edgeseg._core: the native post/pre-processing core behind edgeseg.ops.
// Each part registers its functions from its own translation unit.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_letterbox(py::module_& m);
void bind_decode(py::module_& m);
void bind_nms(py::module_& m);
void bind_masks(py::module_& m);
void bind_polygons(py::module_& m);
void bind_decode_split(py::module_& m);
void bind_quant(py::module_& m);
void bind_track(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "edgeseg native core (private; use edgeseg.ops)";
    bind_letterbox(m);
    bind_decode(m);
    bind_nms(m);
    bind_masks(m);
    bind_polygons(m);
    bind_decode_split(m);
    bind_quant(m);
    bind_track(m);
}
