// Python binding for split-output decoding (edgeseg._core.decode_split / decode_split_dense,
// used by edgeseg.ops.decode_split).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "decode_split.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

struct Prepared {
    std::vector<SplitLevel> levels;
    std::vector<py::array> keep_alive;
    SplitOptions opt;
};

SplitDType dtype_of(const py::array& a) {
    if (a.dtype().equal(py::dtype::of<float>())) return SplitDType::F32;
    if (a.dtype().equal(py::dtype::of<std::int8_t>())) return SplitDType::I8;
    if (a.dtype().equal(py::dtype::of<std::uint8_t>())) return SplitDType::U8;
    fail("split outputs must be float32, int8 or uint8, got " + dtype_str(a));
}

QTensor qtensor(Prepared& p, const py::array& a, const std::pair<double, std::int64_t>& q, std::int64_t expect,
                const std::string& what) {
    if (dtype_of(a) != p.opt.dtype)
        fail("all split outputs must share one dtype; " + what + " is " + dtype_str(a));
    if (a.size() != expect)
        fail(what + " has " + std::to_string(a.size()) + " values, expected " + std::to_string(expect) + " (shape " +
             shape_str(a) + ")");
    py::array c = py::array::ensure(a, py::array::c_style);
    p.keep_alive.push_back(c);
    if (!(q.first > 0.0) || !std::isfinite(q.first)) fail(what + ": scale must be positive and finite");
    QTensor t;
    t.data = c.data();
    t.scale = static_cast<float>(q.first);
    t.zero_point = static_cast<std::int32_t>(q.second);
    return t;
}

using QList = std::vector<std::pair<double, std::int64_t>>;

void prepare(Prepared& p, const std::vector<py::array>& box, const std::vector<py::array>& cls,
             const std::vector<py::array>& coef, const QList& box_q, const QList& cls_q, const QList& coef_q,
             const std::vector<std::pair<std::int64_t, std::int64_t>>& sizes, const std::vector<double>& strides,
             int nc, int nm, int reg_max, bool cn) {
    const std::size_t n = sizes.size();
    if (n == 0) fail("no levels given");
    if (box.size() != n || cls.size() != n || coef.size() != n || box_q.size() != n || cls_q.size() != n ||
        coef_q.size() != n || strides.size() != n)
        fail("every per-level list must have one entry per level (" + std::to_string(n) + ")");
    if (nc < 1) fail("nc must be >= 1");
    if (nm < 0) fail("nm must be >= 0");
    if (reg_max < 1 || reg_max > 1024) fail("reg_max must be in 1..1024");
    p.opt.nc = nc;
    p.opt.nm = nm;
    p.opt.reg_max = reg_max;
    p.opt.cn = cn;
    p.opt.dtype = dtype_of(cls[0]);
    std::int64_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        SplitLevel L;
        L.h = sizes[i].first;
        L.w = sizes[i].second;
        // Bounded so that h * w * 4 * reg_max cannot overflow (and wrap to the size of a small array).
        if (L.h < 1 || L.w < 1 || L.h > (1 << 20) || L.w > (1 << 20))
            fail("level sizes must be in 1..1048576, got " + std::to_string(L.h) + "x" + std::to_string(L.w));
        if (!(strides[i] > 0.0) || !std::isfinite(strides[i])) fail("strides must be positive");
        L.stride = static_cast<float>(strides[i]);
        const std::int64_t HW = L.h * L.w;
        total += HW;
        const std::string lv = " of level " + std::to_string(i);
        L.box = qtensor(p, box[i], box_q[i], HW * 4 * reg_max, "box logits" + lv);
        L.cls = qtensor(p, cls[i], cls_q[i], HW * nc, "class logits" + lv);
        L.coef = qtensor(p, coef[i], coef_q[i], HW * nm, "mask coefficients" + lv);
        p.levels.push_back(L);
    }
    if (total > std::numeric_limits<std::int32_t>::max()) fail("too many anchors");
}

py::tuple py_decode_split(const std::vector<py::array>& box, const std::vector<py::array>& cls,
                          const std::vector<py::array>& coef, const QList& box_q, const QList& cls_q,
                          const QList& coef_q, const std::vector<std::pair<std::int64_t, std::int64_t>>& sizes,
                          const std::vector<double>& strides, int nc, int nm, int reg_max, bool cn, double conf,
                          bool multi_label, std::int64_t max_nms, const py::object& keep_obj) {
    Prepared p;
    prepare(p, box, cls, coef, box_q, cls_q, coef_q, sizes, strides, nc, nm, reg_max, cn);
    if (!std::isfinite(conf)) fail("conf must be finite");
    if (max_nms < 0) fail("max_nms must be >= 0");
    p.opt.conf = static_cast<float>(conf);
    p.opt.multi_label = multi_label;
    p.opt.max_nms = max_nms;
    py::array_t<std::uint8_t, py::array::c_style> keep;
    if (!keep_obj.is_none()) {
        keep = require<std::uint8_t>(py::reinterpret_borrow<py::array>(keep_obj), "keep");
        if (keep.ndim() != 1 || keep.shape(0) != nc) fail("keep must have length nc");
        p.opt.keep = keep.data();
    }
    // conf as double for the threshold: pass through opt.conf (float) is what both paths use.
    DecodeOutput r;
    {
        py::gil_scoped_release nogil;
        decode_split_candidates(p.levels, p.opt, r);
    }
    const auto k = static_cast<py::ssize_t>(r.scores.size());
    return py::make_tuple(to_array(std::move(r.boxes), {k, 4}), to_array(std::move(r.scores), {k}),
                          to_array(std::move(r.class_ids), {k}), to_array(std::move(r.anchors), {k}),
                          to_array(std::move(r.coefs), {k, static_cast<py::ssize_t>(nm)}), r.nonfinite);
}

py::array_t<float> py_decode_split_dense(const std::vector<py::array>& box, const std::vector<py::array>& cls,
                                         const std::vector<py::array>& coef, const QList& box_q,
                                         const QList& cls_q, const QList& coef_q,
                                         const std::vector<std::pair<std::int64_t, std::int64_t>>& sizes,
                                         const std::vector<double>& strides, int nc, int nm, int reg_max, bool cn) {
    Prepared p;
    prepare(p, box, cls, coef, box_q, cls_q, coef_q, sizes, strides, nc, nm, reg_max, cn);
    std::int64_t N = 0;
    for (const auto& L : p.levels) N += L.h * L.w;
    py::array_t<float> out({static_cast<py::ssize_t>(4 + nc + nm), static_cast<py::ssize_t>(N)});
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        decode_split_dense(p.levels, p.opt, dst);
    }
    return out;
}

}  // namespace

void bind_decode_split(py::module_& m) {
    m.def("decode_split", &py_decode_split, py::arg("box"), py::arg("cls"), py::arg("coef"), py::arg("box_q"),
          py::arg("cls_q"), py::arg("coef_q"), py::arg("sizes"), py::arg("strides"), py::arg("nc"), py::arg("nm"),
          py::arg("reg_max"), py::arg("cn"), py::arg("conf"), py::arg("multi_label"), py::arg("max_nms"),
          py::arg("keep") = py::none(),
          "Candidates from split head outputs. Returns (boxes, scores, class_ids, anchors, coefs, nonfinite).");
    m.def("decode_split_dense", &py_decode_split_dense, py::arg("box"), py::arg("cls"), py::arg("coef"),
          py::arg("box_q"), py::arg("cls_q"), py::arg("coef_q"), py::arg("sizes"), py::arg("strides"),
          py::arg("nc"), py::arg("nm"), py::arg("reg_max"), py::arg("cn"),
          "Every anchor of split head outputs as a [4+nc+nm, N] float32 array (single-output layout).");
    m.def("quantised_threshold", &quantised_threshold, py::arg("conf"), py::arg("scale"), py::arg("zero_point"),
          "floor(logit(conf) / scale + zero_point): a quantised class logit q passes when q > this.");
}
