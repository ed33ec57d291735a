"""Reading and normalising images: every odd input is either converted correctly or rejected clearly."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.errors import ImageReadError
from edgeseg.image_io import load_image, read_image, to_bgr


def _write(path: Path, image: np.ndarray) -> Path:
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    data.tofile(str(path))
    return path


def test_gray_2d_and_hw1_become_bgr():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for arr in (gray, gray[:, :, None]):
        out = to_bgr(arr)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8
        assert (out == gray[:, :, None]).all()


def test_bgra_drops_alpha_keeps_colour():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0
    out = to_bgr(bgra)
    assert out.shape == (2, 3, 3)
    assert (out == [10, 20, 30]).all()


def test_uint16_keeps_top_byte():
    arr = np.array([[0, 256, 65535, 4095]], np.uint16)
    assert to_bgr(arr)[0, :, 0].tolist() == [0, 1, 255, 15]


def test_float_unit_range_scaled_and_out_of_range_rejected():
    arr = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert to_bgr(arr)[0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_bgr(np.full((2, 2, 3), 200.0))
    with pytest.raises(ValueError, match="NaN"):
        to_bgr(np.full((2, 2, 3), np.nan))


def test_bgr_uint8_passes_through_unchanged():
    img = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    out = to_bgr(img)
    assert np.array_equal(out, img)


@pytest.mark.parametrize(
    ("arr", "match"),
    [
        (np.zeros((4, 4, 2), np.uint8), "channels"),
        (np.zeros((3, 8, 8), np.uint8), "channels"),  # channel-first
        (np.zeros((1, 2, 3, 4), np.uint8), "shape"),
        (np.zeros(5, np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        (np.zeros((4, 4, 3), bool), "dtype"),
    ],
)
def test_bad_arrays_raise_value_error(arr, match):
    with pytest.raises(ValueError, match=match):
        to_bgr(arr)


def test_load_image_rejects_other_types():
    with pytest.raises(TypeError):
        load_image(123)


def test_read_16bit_png_and_gray_png(tmp_path):
    img16 = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000).astype(np.uint16)
    out = read_image(_write(tmp_path / "deep.png", img16))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert (out[..., 0] == (img16 >> 8)).all()
    gray = np.full((3, 3), 77, np.uint8)
    assert (read_image(_write(tmp_path / "gray.png", gray)) == 77).all()


def test_read_bgra_png(tmp_path):
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 200, 255
    out = read_image(_write(tmp_path / "alpha.png", bgra))
    assert out.shape == (4, 4, 3) and (out[..., 2] == 200).all()


def test_unicode_path(tmp_path):
    img = np.full((6, 6, 3), 40, np.uint8)
    path = _write(tmp_path / "bilder_äöü_画像.png", img)
    assert np.array_equal(read_image(path), img)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        read_image(tmp_path / "nope.jpg")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(path)


def test_corrupt_jpeg_bytes(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"this is not really a jpeg" * 10)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        read_image(path)


def test_text_file_and_directory(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageReadError):
        read_image(path)
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_real_jpeg(shared):
    bus = shared / "data" / "images" / "bus.jpg"
    if not bus.exists():
        pytest.skip("shared data not available")
    img = read_image(bus)
    assert img.shape == (1080, 810, 3) and img.dtype == np.uint8 and img.flags.c_contiguous


def test_jpeg_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 must come out upright (30 wide -> 30 tall)."""
    import struct

    _ok, jpg = cv2.imencode(".jpg", np.zeros((10, 30, 3), np.uint8))
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = jpg.tobytes()
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    assert read_image(path).shape == (30, 10, 3)
