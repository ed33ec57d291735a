// Python bindings for the instance-mask core (masks.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "masks.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

struct Inputs {
    py::array_t<float, py::array::c_style> protos, coefs, boxes;
    masks::ProtoMap map{};
    int64_t n = 0;
};

Inputs validate(const py::array& protos, const py::array& coefs, const py::array& boxes, bool hwc) {
    Inputs in;
    in.protos = require<float>(protos, "protos");
    in.coefs = require<float>(coefs, "coefs");
    in.boxes = require<float>(boxes, "boxes");
    const auto& P = in.protos;
    const bool batched = P.ndim() == 4;
    if (!(P.ndim() == 3 || (batched && P.shape(0) == 1)))
        fail("protos must have shape " + std::string(hwc ? "[mh, mw, nm]" : "[nm, mh, mw]") +
             " (optionally with a leading batch dimension of 1), got " + shape_str(P));
    const py::ssize_t o = batched ? 1 : 0;
    const py::ssize_t a = P.shape(o), b = P.shape(o + 1), c = P.shape(o + 2);
    const py::ssize_t nm = hwc ? c : a, mh = hwc ? a : b, mw = hwc ? b : c;
    if (nm < 1 || mh < 1 || mw < 1) fail("protos must have non-zero dimensions, got " + shape_str(P));
    if (mh > (1 << 20) || mw > (1 << 20) || nm > (1 << 20)) fail("protos are implausibly large: " + shape_str(P));
    if (in.coefs.ndim() != 2 || in.coefs.shape(1) != nm)
        fail("coefs must have shape [n, " + std::to_string(nm) + "] to match protos, got " + shape_str(in.coefs));
    if (in.boxes.ndim() != 2 || in.boxes.shape(1) != 4)
        fail("boxes must have shape [n, 4] (xyxy), got " + shape_str(in.boxes));
    if (in.boxes.shape(0) != in.coefs.shape(0))
        fail("boxes and coefs must have the same number of rows, got " + std::to_string(in.boxes.shape(0)) +
             " and " + std::to_string(in.coefs.shape(0)));
    in.map = masks::ProtoMap{in.protos.data(), int(nm), int(mh), int(mw), hwc};
    in.n = in.boxes.shape(0);
    return in;
}

void check_size(int64_t v, const char* name) {
    if (v < 1 || v > (1 << 20)) fail(std::string(name) + " must be between 1 and 1048576, got " + std::to_string(v));
}

py::tuple pack(masks::MaskOutput&& out) {
    const py::ssize_t n = py::ssize_t(out.offsets.size()) - 1;
    const py::ssize_t nbits = py::ssize_t(out.bits.size());
    const int64_t nonfinite = out.nonfinite;
    auto rects = to_array(std::move(out.rects), {n, 4});
    auto data = to_array(std::move(out.bits), {nbits});
    auto offsets = to_array(std::move(out.offsets), {n + 1});
    return py::make_tuple(rects, data, offsets, nonfinite);
}

}  // namespace

void bind_masks(py::module_& m) {
    m.def(
        "masks_native",
        [](const py::array& protos, const py::array& coefs, const py::array& boxes, int64_t orig_h,
           int64_t orig_w, bool hwc, int threads) {
            Inputs in = validate(protos, coefs, boxes, hwc);
            check_size(orig_h, "orig_h");
            check_size(orig_w, "orig_w");
            masks::MaskOutput out;
            {
                py::gil_scoped_release release;
                out = masks::masks_native(in.map, in.coefs.data(), in.boxes.data(), in.n, int(orig_h),
                                          int(orig_w), threads);
            }
            return pack(std::move(out));
        },
        py::arg("protos"), py::arg("coefs"), py::arg("boxes"), py::arg("orig_h"), py::arg("orig_w"),
        py::arg("hwc") = false, py::arg("threads") = 0,
        "Retina (process_mask_native) masks, region-only. Returns (rects, data, offsets, nonfinite).");

    m.def(
        "masks_input",
        [](const py::array& protos, const py::array& coefs, const py::array& boxes, int64_t in_h, int64_t in_w,
           int64_t pad_left, int64_t pad_top, int64_t new_w, int64_t new_h, int64_t orig_h, int64_t orig_w,
           bool hwc, int threads) {
            Inputs in = validate(protos, coefs, boxes, hwc);
            check_size(in_h, "in_h");
            check_size(in_w, "in_w");
            check_size(orig_h, "orig_h");
            check_size(orig_w, "orig_w");
            check_size(new_w, "new_w");
            check_size(new_h, "new_h");
            if (pad_left < 0 || pad_top < 0 || pad_left + new_w > in_w || pad_top + new_h > in_h)
                fail("letterbox geometry is inconsistent: the resized image must lie inside the model input");
            masks::InputGeometry g{int(in_h), int(in_w), int(pad_left), int(pad_top),
                                   int(new_w), int(new_h), int(orig_h), int(orig_w)};
            masks::MaskOutput out;
            {
                py::gil_scoped_release release;
                out = masks::masks_input(in.map, in.coefs.data(), in.boxes.data(), in.n, g, threads);
            }
            return pack(std::move(out));
        },
        py::arg("protos"), py::arg("coefs"), py::arg("boxes"), py::arg("in_h"), py::arg("in_w"),
        py::arg("pad_left"), py::arg("pad_top"), py::arg("new_w"), py::arg("new_h"), py::arg("orig_h"),
        py::arg("orig_w"), py::arg("hwc") = false, py::arg("threads") = 0,
        "Input-resolution (process_mask) masks mapped to original pixels, region-only. "
        "Returns (rects, data, offsets, nonfinite).");
}
