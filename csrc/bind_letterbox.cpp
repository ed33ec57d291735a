// Python bindings for the letterbox kernel (edgeseg._core.letterbox*, used by edgeseg.ops.letterbox).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common.hpp"
#include "letterbox.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

py::tuple geometry_tuple(const LetterboxGeometry& g) {
    return py::make_tuple(g.scale, g.pad_left, g.pad_top, g.new_w, g.new_h, g.in_w, g.in_h, g.orig_w, g.orig_h);
}

py::tuple py_geometry(int orig_h, int orig_w, int target_h, int target_w, bool scaleup, bool auto_pad, int stride) {
    return geometry_tuple(letterbox_geometry(orig_h, orig_w, target_h, target_w, scaleup, auto_pad, stride));
}

py::tuple py_letterbox(const py::array& image, int target_h, int target_w, bool scaleup, bool auto_pad, int stride,
                       int fill, int layout, int dtype, bool bgr_to_rgb, const py::object& out_obj, int threads) {
    if (image.ndim() != 3 || image.shape(2) != 3)
        fail("image must be a 3-channel HxWx3 array, got shape " + shape_str(image));
    if (!image.dtype().equal(py::dtype::of<std::uint8_t>()))
        fail("image must have dtype uint8, got " + dtype_str(image));
    if (image.shape(0) == 0 || image.shape(1) == 0) fail("image must be non-empty, got shape " + shape_str(image));
    if (image.shape(0) > (1 << 30) || image.shape(1) > (1 << 30)) fail("image is too large: " + shape_str(image));
    if (fill < 0 || fill > 255) fail("fill must be in 0..255, got " + std::to_string(fill));
    if (layout != 0 && layout != 1) fail("layout code must be 0 (nchw) or 1 (nhwc)");
    if (dtype < 0 || dtype > 2) fail("dtype code must be 0 (float32), 1 (uint8) or 2 (int8)");

    const LetterboxGeometry g = letterbox_geometry(static_cast<int>(image.shape(0)), static_cast<int>(image.shape(1)),
                                                   target_h, target_w, scaleup, auto_pad, stride);
    const OutLayout lay = static_cast<OutLayout>(layout);
    const OutType typ = static_cast<OutType>(dtype);
    const std::vector<py::ssize_t> shape = lay == OutLayout::NCHW ? std::vector<py::ssize_t>{1, 3, g.in_h, g.in_w}
                                                                   : std::vector<py::ssize_t>{1, g.in_h, g.in_w, 3};
    py::dtype want = typ == OutType::F32  ? py::dtype::of<float>()
                     : typ == OutType::U8 ? py::dtype::of<std::uint8_t>()
                                          : py::dtype::of<std::int8_t>();
    py::array out;
    if (out_obj.is_none()) {
        out = py::array(want, shape);
    } else {
        if (!py::isinstance<py::array>(out_obj)) fail("out must be a numpy array or None");
        out = py::reinterpret_borrow<py::array>(out_obj);
        std::string want_shape = "(";
        for (std::size_t i = 0; i < shape.size(); ++i) want_shape += (i ? ", " : "") + std::to_string(shape[i]);
        want_shape += ")";
        if (!out.dtype().equal(want))
            fail("out must have dtype " + py::str(want).cast<std::string>() + ", got " + dtype_str(out));
        if (out.ndim() != 4 || !std::equal(shape.begin(), shape.end(), out.shape()))
            fail("out must have shape " + want_shape + ", got " + shape_str(out));
        if (!(out.flags() & py::array::c_style)) fail("out must be C-contiguous");
        if (!out.writeable()) fail("out must be writeable");
    }

    ImageView src;
    src.data = static_cast<const std::uint8_t*>(image.data());
    src.h = static_cast<int>(image.shape(0));
    src.w = static_cast<int>(image.shape(1));
    src.row_stride = image.strides(0);
    src.px_stride = image.strides(1);
    src.ch_stride = image.strides(2);
    void* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        letterbox_into(src, g, fill, bgr_to_rgb, lay, typ, dst, threads);
    }
    return py::make_tuple(out, geometry_tuple(g));
}

}  // namespace

void bind_letterbox(py::module_& m) {
    m.def("letterbox_geometry", &py_geometry, py::arg("orig_h"), py::arg("orig_w"), py::arg("target_h"),
          py::arg("target_w"), py::arg("scaleup") = true, py::arg("auto") = false, py::arg("stride") = 32,
          "Ultralytics letterbox geometry: (scale, pad_left, pad_top, new_w, new_h, in_w, in_h, orig_w, orig_h).");
    m.def("letterbox", &py_letterbox, py::arg("image"), py::arg("target_h"), py::arg("target_w"),
          py::arg("scaleup") = true, py::arg("auto") = false, py::arg("stride") = 32, py::arg("fill") = 114,
          py::arg("layout") = 0, py::arg("dtype") = 0, py::arg("bgr_to_rgb") = true, py::arg("out") = py::none(),
          py::arg("threads") = 0,
          "Resize + pad + channel swap + normalise + layout in one pass. Returns (out, geometry tuple).");
}
