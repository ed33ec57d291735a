"""`edgeseg run --track/--zone/--line` and `edgeseg predict --track`, run as users run them (subprocess), on the
built-in demo model and clip."""

import json
import subprocess
import sys

import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")


def edgeseg(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "edgeseg", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_run_track_zone_line_writes_ids_events_and_counts(tmp_path):
    out, video = tmp_path / "t.jsonl", tmp_path / "t.mp4"
    result = edgeseg(
        "run", "--source", "demo", "--max-frames", 90, "--track", "--json", out, "--save", video,
        "--zone", "left:0,0 320,0 320,360 0,360",
        "--line", "middle:320,0 320,360@min_distance=4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "conf=0.1" in result.stdout and "agnostic_nms=True" in result.stdout  # the detector under --track
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 90 and _frames(video) == 90
    ids = [row["tracker_id"] for r in records for row in r["detections"]]
    assert ids and all(isinstance(i, int) and i >= 1 for i in ids)
    for r in records:  # one row per id per frame
        frame_ids = [row["tracker_id"] for row in r["detections"]]
        assert len(frame_ids) == len(set(frame_ids))
    events = [e for r in records for e in r["events"]]
    assert {e["type"] for e in events} <= {"enter", "leave", "cross"}
    crossings = [e for e in events if e["type"] == "cross"]
    last = records[-1]
    assert last["lines"]["middle"]["in"] == sum(e["direction"] == "in" for e in crossings)
    assert last["lines"]["middle"]["out"] == sum(e["direction"] == "out" for e in crossings)
    assert last["zones"]["left"]["entered"] == sum(e["type"] == "enter" for e in events)
    for r in records:  # the zone's count is the tracked objects inside it this frame
        assert r["zones"]["left"]["count"] <= len(r["detections"])
    assert "tracking:" in result.stdout and "line middle: in" in result.stdout


def test_track_ids_are_drawn(tmp_path):
    """The annotated video differs between --track (colour per id, '#id' labels) and a plain run."""
    plain, tracked = tmp_path / "plain.mp4", tmp_path / "tracked.mp4"
    assert edgeseg("run", "--source", "demo", "--max-frames", 10, "--conf", "0.1", "--save", plain).returncode == 0
    assert edgeseg("run", "--source", "demo", "--max-frames", 10, "--track", "--save", tracked).returncode == 0
    a, b = cv2.VideoCapture(str(plain)), cv2.VideoCapture(str(tracked))
    for _ in range(9):
        a.read(), b.read()
    fa, fb = a.read()[1], b.read()[1]
    a.release(), b.release()
    assert fa is not None and fb is not None and (fa != fb).any()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--zone", "door:1,2 3,4"], "zone 'door'"),
        (["--line", "gate:0,0"], "line 'gate'"),
        (["--zone", "a:0,0 9,0 9,9@trigger=nowhere"], "trigger"),
        (["--zones", "missing.json"], "does not exist"),
        (["--track-masks", "2"], "between 0 and 1"),
    ],
)
def test_bad_zone_options_are_one_clear_error(args, message):
    result = edgeseg("run", "--source", "demo", "--max-frames", 1, *args)
    assert result.returncode in (1, 2) and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_predict_tracks_a_video(tmp_path):
    from edgeseg.synthetic import make_clip

    clip = make_clip(tmp_path / "clip.mp4", n_frames=30)
    out = tmp_path / "pred"
    result = edgeseg("predict", "--model", _demo_model(), "--source", clip, "--save", out, "--json", "--track")
    assert result.returncode == 0, result.stderr
    assert "clip.mp4:" in result.stdout and "track id(s)" in result.stdout
    rows = [json.loads(line) for line in (out / "clip.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and any(d.get("tracker_id") for r in rows for d in r["detections"])


def _demo_model():
    from edgeseg.assets import demo_model_path

    return demo_model_path()


def test_demo_ids_are_stable(tmp_path):
    """`edgeseg run --track --source demo`: scored against the demo clip's ground truth (TrackEval). Measured:
    8 ids for 7 objects, 1 ID switch, IDF1 92.1 %, HOTA 79.9 %. The floors leave room for a slower or
    different ONNX Runtime build, not for a tracker that loses objects (class-consistent tracks behind per-class
    NMS make 13 ids and 9 switches here)."""
    pytest.importorskip("trackeval")
    import types

    import numpy as np

    import tracking_eval as te
    from edgeseg.synthetic.tracks import demo_truth

    out = tmp_path / "demo.jsonl"
    result = edgeseg("run", "--source", "demo", "--track", "--json", out)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    truth = demo_truth(len(rows))
    clip = types.SimpleNamespace(gt=truth, n_frames=len(truth), name="demo")
    ids = [np.array([d["tracker_id"] for d in r["detections"]], np.int64) for r in rows]
    boxes = [np.array([d["box"] for d in r["detections"]], np.float32).reshape(-1, 4) for r in rows]
    m = te.evaluate(clip, te.Run("ours", ids, boxes, np.zeros(1)))
    used = len(set(np.concatenate(ids).tolist()))
    assert len(rows) == 180 and used <= 9 and m["IDSW"] <= 3 and m["IDF1"] >= 0.88 and m["HOTA"] >= 0.75, (used, m)
