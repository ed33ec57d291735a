// Python binding for the tracker (edgeseg._core.Tracker, edgeseg._core.linear_assignment; used by
// edgeseg.ops.track). Inputs are checked and copied with the GIL held; the update runs without it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common.hpp"
#include "track.hpp"

namespace py = pybind11;
using namespace edgeseg;

namespace {

// One tracker; calls are serialised by the mutex (taken only while the GIL is released, and no code holding it
// takes the GIL, so it cannot deadlock).
struct PyTracker {
    explicit PyTracker(const track::Config& c) : core(c) {}
    track::ByteTracker core;
    std::mutex mu;
};

struct Inputs {
    std::vector<float> boxes, scores;
    std::vector<std::int32_t> cls, rects;
    std::vector<std::int64_t> offsets;
};

Inputs& inputs() {
    thread_local Inputs in;  // reused across calls on the same thread
    return in;
}

constexpr std::int64_t kMaxDetections = 1 << 20;

std::string n_str(std::int64_t n) { return std::to_string(n); }

py::array_t<std::int64_t> py_update(PyTracker& self, const py::array& boxes_in, const py::array& scores_in,
                                    const py::array& cls_in, const py::object& rects_obj, const py::object& data_obj,
                                    const py::object& offsets_obj, std::int64_t steps) {
    auto boxes = require<float>(boxes_in, "boxes");
    auto scores = require<float>(scores_in, "scores");
    auto cls = require<std::int32_t>(cls_in, "class_ids");
    if (boxes.ndim() != 2 || boxes.shape(1) != 4) fail("boxes must have shape [n, 4], got " + shape_str(boxes));
    const std::int64_t n = boxes.shape(0);
    if (n > kMaxDetections) fail("at most " + n_str(kMaxDetections) + " detections per update, got " + n_str(n));
    if (scores.ndim() != 1 || scores.shape(0) != n)
        fail("scores must have shape [" + n_str(n) + "] to match boxes, got " + shape_str(scores));
    if (cls.ndim() != 1 || cls.shape(0) != n)
        fail("class_ids must have shape [" + n_str(n) + "] to match boxes, got " + shape_str(cls));
    if (steps < 1 || steps > track::kMaxSteps)
        fail("steps must be in [1, " + n_str(track::kMaxSteps) + "], got " + n_str(steps));

    Inputs& in = inputs();
    in.boxes.assign(boxes.data(), boxes.data() + n * 4);
    in.scores.assign(scores.data(), scores.data() + n);
    in.cls.assign(cls.data(), cls.data() + n);
    for (std::int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(in.scores[i])) fail("scores must be finite; scores[" + n_str(i) + "] is not");
        for (int k = 0; k < 4; ++k)
            if (!std::isfinite(in.boxes[i * 4 + k])) fail("boxes must be finite; boxes[" + n_str(i) + "] is not");
    }

    const int given = int(!rects_obj.is_none()) + int(!data_obj.is_none()) + int(!offsets_obj.is_none());
    if (given != 0 && given != 3) fail("masks need rects, data and offsets together (or none of them)");
    py::array_t<std::uint8_t, py::array::c_style> data;
    track::MaskView view;
    const track::MaskView* masks = nullptr;
    if (given == 3) {
        for (const py::object* o : {&rects_obj, &data_obj, &offsets_obj})
            if (!py::isinstance<py::array>(*o)) fail("rects, data and offsets must be numpy arrays");
        auto rects = require<std::int32_t>(py::reinterpret_borrow<py::array>(rects_obj), "rects");
        data = require<std::uint8_t>(py::reinterpret_borrow<py::array>(data_obj), "data");
        auto offsets = require<std::int64_t>(py::reinterpret_borrow<py::array>(offsets_obj), "offsets");
        if (rects.ndim() != 2 || rects.shape(0) != n || rects.shape(1) != 4)
            fail("rects must have shape [" + n_str(n) + ", 4] (one mask per box), got " + shape_str(rects));
        if (data.ndim() != 1) fail("data must be 1-D, got " + shape_str(data));
        if (offsets.ndim() != 1 || offsets.shape(0) != n + 1)
            fail("offsets must have shape [" + n_str(n + 1) + "], got " + shape_str(offsets));
        in.rects.assign(rects.data(), rects.data() + n * 4);
        in.offsets.assign(offsets.data(), offsets.data() + n + 1);
        if (in.offsets[0] != 0) fail("offsets[0] must be 0");
        for (std::int64_t i = 0; i < n; ++i) {
            const std::int32_t* r = in.rects.data() + i * 4;
            if (r[2] < r[0] || r[3] < r[1]) fail("rects[" + n_str(i) + "] must have x0 <= x1 and y0 <= y1");
            const std::int64_t size = (std::int64_t{r[2]} - r[0]) * (std::int64_t{r[3]} - r[1]);
            if (in.offsets[i + 1] - in.offsets[i] != size)
                fail("offsets do not match the rectangle sizes (mask " + n_str(i) + ")");
        }
        if (in.offsets[n] != data.shape(0))
            fail("data has " + n_str(data.shape(0)) + " bytes, offsets say " + n_str(in.offsets[n]));
        view.rects = in.rects.data();
        view.data = data.data();
        view.offsets = in.offsets.data();
        masks = &view;
    }

    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n));
    std::int64_t* ids = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(self.mu);
        self.core.update(in.boxes.data(), in.scores.data(), in.cls.data(), n, masks, steps, ids);
    }
    return out;
}

template <typename T>
py::array_t<T> copy_out(const std::vector<T>& v, std::vector<py::ssize_t> shape) {
    py::array_t<T> a(shape);
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

py::tuple py_tracks(PyTracker& self) {
    thread_local track::Snapshot s;
    {
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(self.mu);
        self.core.snapshot(s);
    }
    const py::ssize_t k = static_cast<py::ssize_t>(s.track_id.size());
    return py::make_tuple(copy_out(s.track_id, {k}), copy_out(s.state, {k}), copy_out(s.class_id, {k}),
                          copy_out(s.box, {k, 4}), copy_out(s.score, {k}), copy_out(s.hits, {k}),
                          copy_out(s.age, {k}), copy_out(s.frames_since_update, {k}));
}

void py_reset(PyTracker& self) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(self.mu);
    self.core.reset();
}

py::array_t<std::int64_t> py_linear_assignment(const py::array& cost_in, double limit) {
    auto cost = require<double>(cost_in, "cost");
    if (cost.ndim() != 2) fail("cost must be 2-D [n, m], got " + shape_str(cost));
    const std::int64_t n = cost.shape(0), m = cost.shape(1);
    if (n > 100000 || m > 100000) fail("cost is too large: " + shape_str(cost));
    if (!std::isfinite(limit)) fail("limit must be finite");
    const double* c = cost.data();
    for (std::int64_t k = 0; k < n * m; ++k)
        if (!std::isfinite(c[k])) fail("cost must be finite");
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n));
    std::int64_t* r = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        track::linear_assignment(c, n, m, limit, r);
    }
    return out;
}

}  // namespace

void bind_track(py::module_& m) {
    py::class_<PyTracker>(m, "Tracker",
                          "ByteTrack-style multi-object tracker (one thread at a time; calls are serialised).")
        .def(py::init([](double high_thresh, double low_thresh, double new_track_thresh, double match_thresh,
                         double low_match_thresh, double tentative_match_thresh, std::int64_t min_hits,
                         std::int64_t lost_frames, double mask_weight, bool class_consistent) {
                 track::Config c;
                 c.high_thresh = high_thresh;
                 c.low_thresh = low_thresh;
                 c.new_track_thresh = new_track_thresh;
                 c.match_thresh = match_thresh;
                 c.low_match_thresh = low_match_thresh;
                 c.tentative_match_thresh = tentative_match_thresh;
                 c.min_hits = min_hits;
                 c.lost_frames = lost_frames;
                 c.mask_weight = mask_weight;
                 c.class_consistent = class_consistent;
                 return std::make_unique<PyTracker>(c);
             }),
             py::arg("high_thresh") = 0.5, py::arg("low_thresh") = 0.1, py::arg("new_track_thresh") = 0.6,
             py::arg("match_thresh") = 0.2, py::arg("low_match_thresh") = 0.3,
             py::arg("tentative_match_thresh") = 0.3, py::arg("min_hits") = 2, py::arg("lost_frames") = 30,
             py::arg("mask_weight") = 0.0, py::arg("class_consistent") = true)
        .def("update", &py_update, py::arg("boxes"), py::arg("scores"), py::arg("class_ids"),
             py::arg("rects") = py::none(), py::arg("data") = py::none(), py::arg("offsets") = py::none(),
             py::arg("steps") = 1,
             "Advance by `steps` frames and associate the detections. Returns int64 [n] track ids (-1: none).")
        .def("tracks", &py_tracks,
             "Live tracks: (track_id, state, class_id, box [k, 4], score, hits, age, frames_since_update).")
        .def("reset", &py_reset, "Drop every track; ids restart at 1.");
    m.def("linear_assignment", &py_linear_assignment, py::arg("cost"), py::arg("limit"),
          "Exact assignment with lap.lapjv(extend_cost=True, cost_limit=limit) semantics. Returns int64 [n] "
          "column per row, -1 when unassigned.");
}
