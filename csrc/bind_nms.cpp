// Python binding for greedy NMS (edgeseg._core.nms, used by edgeseg.ops.nms).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "nms.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

py::array_t<std::int64_t> py_nms(const py::array& boxes_in, const py::array& scores_in, const py::object& cls_obj,
                                 double iou, std::int64_t max_det) {
    auto boxes = require<float>(boxes_in, "boxes");
    auto scores = require<float>(scores_in, "scores");
    if (boxes.ndim() != 2 || boxes.shape(1) != 4) fail("boxes must have shape [n, 4], got " + shape_str(boxes));
    const std::int64_t n = boxes.shape(0);
    if (scores.ndim() != 1 || scores.shape(0) != n)
        fail("scores must have shape [" + std::to_string(n) + "] to match boxes, got " + shape_str(scores));
    py::array_t<std::int32_t, py::array::c_style> cls;
    const std::int32_t* cls_ptr = nullptr;
    if (!cls_obj.is_none()) {
        if (!py::isinstance<py::array>(cls_obj)) fail("class_ids must be an int32 numpy array or None");
        cls = require<std::int32_t>(py::reinterpret_borrow<py::array>(cls_obj), "class_ids");
        if (cls.ndim() != 1 || cls.shape(0) != n)
            fail("class_ids must have shape [" + std::to_string(n) + "] to match boxes, got " + shape_str(cls));
        cls_ptr = cls.data();
    }
    if (!std::isfinite(iou)) fail("iou must be finite");
    if (max_det < 0) fail("max_det must be >= 0, got " + std::to_string(max_det));
    const float* b = boxes.data();
    const float* sc = scores.data();
    for (std::int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(sc[i])) fail("scores must be finite; scores[" + std::to_string(i) + "] is not");
        for (int k = 0; k < 4; ++k)
            if (!std::isfinite(b[i * 4 + k])) fail("boxes must be finite; boxes[" + std::to_string(i) + "] is not");
    }

    thread_local std::vector<std::int64_t> keep;
    {
        py::gil_scoped_release nogil;
        nms_greedy(b, sc, cls_ptr, n, static_cast<float>(iou), max_det, keep);
    }
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(keep.size()));
    std::copy(keep.begin(), keep.end(), out.mutable_data());
    return out;
}

py::array_t<std::int64_t> py_topk_pairs(const py::array& anchors_in, const py::array& scores_in, std::int64_t k) {
    auto anchors = require<std::int32_t>(anchors_in, "anchors");
    auto scores = require<float>(scores_in, "scores");
    if (anchors.ndim() != 1) fail("anchors must have shape [n], got " + shape_str(anchors));
    const std::int64_t n = anchors.shape(0);
    if (scores.ndim() != 1 || scores.shape(0) != n)
        fail("scores must have shape [" + std::to_string(n) + "] to match anchors, got " + shape_str(scores));
    if (k < 1) fail("k must be >= 1, got " + std::to_string(k));
    const float* sc = scores.data();
    for (std::int64_t i = 0; i < n; ++i)
        if (!std::isfinite(sc[i])) fail("scores must be finite; scores[" + std::to_string(i) + "] is not");
    thread_local std::vector<std::int64_t> keep;
    {
        py::gil_scoped_release nogil;
        topk_pairs(anchors.data(), sc, n, k, keep);
    }
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(keep.size()));
    std::copy(keep.begin(), keep.end(), out.mutable_data());
    return out;
}

}  // namespace

void bind_nms(py::module_& m) {
    m.def("nms", &py_nms, py::arg("boxes"), py::arg("scores"), py::arg("class_ids") = py::none(),
          py::arg("iou") = 0.7, py::arg("max_det") = 300,
          "Greedy NMS (torchvision semantics, class-aware when class_ids is given). Returns int64 kept indices.");
    m.def("topk_pairs", &py_topk_pairs, py::arg("anchors"), py::arg("scores"), py::arg("k"),
          "YOLO26's one-to-one selection of (anchor, class) pairs: the k anchors with the best scores, then the k "
          "best pairs of them. Returns int64 indices of the kept pairs, by score descending.");
}
