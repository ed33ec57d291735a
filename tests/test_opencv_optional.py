"""OpenCV is optional: without any cv2 the runtime still segments numpy arrays (gray, BGR, BGRA) exactly as
with it, and what truly needs cv2 (decoding a file, opening a video, drawing boxes) says both ways to get it.

"No cv2 installed" is simulated in a child process by a meta-path finder that makes ``import cv2`` fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

try:
    import onnxruntime
except ImportError:
    onnxruntime = None
needs_onnxruntime = pytest.mark.skipif(onnxruntime is None, reason="onnxruntime not installed")

# Put first in a child's code: from then on `import cv2` fails as if no OpenCV were installed.
BLOCK_CV2 = """
import sys

class SimulateNoCV2Installed:
    def find_spec(self, name, path=None, target=None):
        if name == "cv2" or name.startswith("cv2."):
            raise ImportError("No module named 'cv2' (simulated: no OpenCV installed)")
        return None

sys.meta_path.insert(0, SimulateNoCV2Installed())
sys.modules.pop("cv2", None)
"""


def _run_python(code: str, *args: object, block_cv2: bool = True) -> subprocess.CompletedProcess:
    script = (BLOCK_CV2 if block_cv2 else "") + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def _results(detections) -> dict[str, np.ndarray]:
    full = detections.masks.full() if detections.masks is not None else np.zeros((0, 1, 1), bool)
    return {
        "xyxy": detections.xyxy,
        "confidence": detections.confidence,
        "class_id": detections.class_id,
        "masks": full,
    }


def _inputs() -> dict[str, np.ndarray]:
    """A demo clip frame (shapes the demo model finds) as BGR, gray (H, W), gray (H, W, 1) and BGRA."""
    pytest.importorskip("cv2")  # the clip is drawn with OpenCV; the child gets the arrays through .npy files
    from edgeseg.synthetic import iter_clip_frames

    bgr = list(iter_clip_frames(12, size=(320, 192), seed=3))[-1]
    gray = bgr.mean(axis=2).round().astype(np.uint8)
    alpha = np.full((*bgr.shape[:2], 1), 200, np.uint8)
    return {"bgr": bgr, "gray": gray, "gray1": gray[..., None], "bgra": np.concatenate([bgr, alpha], axis=2)}


@needs_onnxruntime
def test_segmenter_on_arrays_without_cv2_gives_the_same_results(tmp_path):
    import cv2  # noqa: F401 - imported here, so the parent converts gray/BGRA with OpenCV, the child with numpy

    from edgeseg import Segmenter
    from edgeseg.annotate import draw
    from edgeseg.assets import demo_model_path

    inputs = _inputs()
    for name, array in inputs.items():
        np.save(tmp_path / f"{name}.npy", array)
    proc = _run_python(
        """
        from pathlib import Path
        import numpy as np
        from edgeseg import Segmenter
        from edgeseg.annotate import draw
        from edgeseg.assets import demo_model_path
        from edgeseg.opencv import OpenCVNotInstalledError

        folder = Path(sys.argv[1])
        seg = Segmenter(demo_model_path(), backend="onnxruntime")
        for name in ("bgr", "gray", "gray1", "bgra"):
            det = seg(np.load(folder / f"{name}.npy"))
            full = det.masks.full() if det.masks is not None else np.zeros((0, 1, 1), bool)
            np.savez(folder / f"{name}_out.npz", xyxy=det.xyxy, confidence=det.confidence, class_id=det.class_id,
                     masks=full)
        bgr = np.load(folder / "bgr.npy")
        det = seg(bgr)
        np.save(folder / "painted.npy", draw(bgr, det, boxes=False, labels=False))  # masks only: numpy
        try:
            draw(bgr, det)
        except OpenCVNotInstalledError as exc:
            print("DRAW:", exc)
        assert "cv2" not in sys.modules, "cv2 imported"
        print("OK")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout
    assert "DRAW: drawing boxes and labels needs OpenCV" in proc.stdout

    seg = Segmenter(demo_model_path(), backend="onnxruntime")
    expected = {name: _results(seg(array)) for name, array in inputs.items()}
    assert len(expected["bgr"]["xyxy"]) > 0, "the demo model found nothing: the comparison would be empty"
    for name, want in expected.items():
        got = np.load(tmp_path / f"{name}_out.npz")
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{name}: {key}")
    det = seg(inputs["bgr"])
    np.testing.assert_array_equal(
        np.load(tmp_path / "painted.npy"), draw(inputs["bgr"], det, boxes=False, labels=False)
    )


def test_to_bgr_without_cv2_matches_opencv():
    """Gray and BGRA arrays: numpy (no cv2) gives OpenCV's pixels; cv2 is used when the process has it."""
    cv2 = pytest.importorskip("cv2")
    from edgeseg.image_io import to_bgr

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    bgra = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    gray16 = rng.integers(0, 65536, (37, 53), dtype=np.uint16)
    cases = {
        "gray": (gray, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)),
        "gray1": (gray[..., None], cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)),
        "bgra": (bgra, cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR)),
        "bgra_view": (bgra[::2, ::3], cv2.cvtColor(np.ascontiguousarray(bgra[::2, ::3]), cv2.COLOR_BGRA2BGR)),
        "gray16": (gray16, cv2.cvtColor((gray16 >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)),
    }
    for name, (array, want) in cases.items():
        got = to_bgr(array)  # cv2 is loaded here: OpenCV converts
        assert got.flags.c_contiguous and got.dtype == np.uint8
        np.testing.assert_array_equal(got, want, err_msg=name)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "cv2", None)  # as if no cv2 were installed: numpy converts
        for name, (array, want) in cases.items():
            got = to_bgr(array)
            assert got.flags.c_contiguous and got.dtype == np.uint8
            np.testing.assert_array_equal(got, want, err_msg=f"{name} (numpy)")


def test_files_and_videos_without_cv2_name_both_ways_to_get_it(tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n not decoded: the error comes first")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not opened: the error comes first")
    proc = _run_python(
        """
        from edgeseg.image_io import load_image, read_image
        from edgeseg.opencv import OpenCVNotInstalledError
        from edgeseg.sources import open_source

        image, video = sys.argv[1], sys.argv[2]
        for what, call in [
            ("read_image", lambda: read_image(image)),
            ("load_image", lambda: load_image(image)),
            ("open_source(image)", lambda: next(iter(open_source(image)))),
            ("open_source(video)", lambda: next(iter(open_source(video)))),
        ]:
            try:
                call()
            except OpenCVNotInstalledError as exc:
                assert isinstance(exc, ImportError)
                print(f"{what}: {exc}")
            else:
                raise SystemExit(f"{what}: no OpenCVNotInstalledError")
        """,
        image,
        video,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4, proc.stdout
    for line in lines:
        assert "needs OpenCV (cv2)" in line, line
        assert "edgeseg[opencv]" in line and "--system-site-packages" in line, line
    assert "photo.png" in lines[0] and "clip.mp4" in lines[3]


@needs_onnxruntime
def test_predict_command_without_cv2_is_a_clear_error(tmp_path):
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8 not decoded")
    proc = _run_python(
        """
        from edgeseg.cli import main
        from edgeseg.assets import demo_model_path

        sys.exit(main(["predict", "--model", str(demo_model_path()), "--source", sys.argv[1], "--save", sys.argv[2]]))
        """,
        image,
        tmp_path / "out",
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    assert "edgeseg[opencv]" in proc.stderr and "--system-site-packages" in proc.stderr


def test_importing_edgeseg_does_not_import_cv2():
    """Even where cv2 is installed: importing edgeseg and its runtime modules loads no OpenCV."""
    pytest.importorskip("cv2")
    proc = _run_python(
        """
        import sys
        import edgeseg
        from edgeseg import Detections, Segmenter
        import edgeseg.annotate, edgeseg.image_io, edgeseg.segmenter, edgeseg.sources, edgeseg.pipeline
        import edgeseg.synthetic.clip, edgeseg.synthetic.dataset, edgeseg.data.augment, edgeseg.data.labels
        import edgeseg.data.images, edgeseg.data.masks, edgeseg.val, edgeseg.cli, edgeseg.cli.predict
        assert "cv2" not in sys.modules, "cv2 imported"
        import cv2  # installed: the child really could have imported it
        print("OK")
        """,
        block_cv2=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout
