// Python bindings for the instance-mask core (masks.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
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

// Rows `rows` of a MaskSet's (rects, offsets, data), in that order: one copy of the chosen bitmaps. The set is
// checked by MaskSet; here only what the copy relies on (shapes, offsets inside data, rows in range).
py::tuple mask_rows(const py::array& rects_in, const py::array& data_in, const py::array& offsets_in,
                    const py::array& rows_in) {
    auto rects = require<std::int32_t>(rects_in, "rects");
    auto data = require<std::uint8_t>(data_in, "data");
    auto offsets = require<std::int64_t>(offsets_in, "offsets");
    auto rows = require<std::int64_t>(rows_in, "rows");
    if (rects.ndim() != 2 || rects.shape(1) != 4) fail("rects must have shape [n, 4], got " + shape_str(rects));
    const std::int64_t n = rects.shape(0);
    if (offsets.ndim() != 1 || offsets.shape(0) != n + 1)
        fail("offsets must have shape [" + std::to_string(n + 1) + "], got " + shape_str(offsets));
    if (data.ndim() != 1 || rows.ndim() != 1) fail("data and rows must be 1-D");
    const std::int64_t k = rows.shape(0), size = data.shape(0);
    const std::int64_t* off = offsets.data();
    const std::int64_t* r = rows.data();
    std::int64_t total = 0;
    for (std::int64_t j = 0; j < k; ++j) {
        if (r[j] < 0 || r[j] >= n) fail("row " + std::to_string(r[j]) + " out of range for " + std::to_string(n));
        const std::int64_t a = off[r[j]], b = off[r[j] + 1];
        if (a < 0 || b < a || b > size) fail("offsets do not lie inside data");
        total += b - a;
    }
    py::array_t<std::int32_t> out_rects({k, std::int64_t(4)});
    py::array_t<std::uint8_t> out_data(total);
    py::array_t<std::int64_t> out_offsets(k + 1);
    {
        std::int32_t* rr = out_rects.mutable_data();
        std::uint8_t* dd = out_data.mutable_data();
        std::int64_t* oo = out_offsets.mutable_data();
        const std::int32_t* src_r = rects.data();
        const std::uint8_t* src_d = data.data();
        py::gil_scoped_release release;
        oo[0] = 0;
        for (std::int64_t j = 0; j < k; ++j) {
            std::copy(src_r + 4 * r[j], src_r + 4 * r[j] + 4, rr + 4 * j);
            const std::int64_t a = off[r[j]], b = off[r[j] + 1];
            std::copy(src_d + a, src_d + b, dd + oo[j]);
            oo[j + 1] = oo[j] + (b - a);
        }
    }
    return py::make_tuple(out_rects, out_data, out_offsets);
}

}  // namespace

void bind_masks(py::module_& m) {
    m.def("mask_rows", &mask_rows, py::arg("rects"), py::arg("data"), py::arg("offsets"), py::arg("rows"),
          "Rows of a MaskSet (int64 indices in [0, n)), in order: (rects, data, offsets) with the bitmaps copied.");
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
