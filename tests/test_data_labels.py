"""Dataset yaml, label scanning/verification and the label cache (edgeseg.data)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("yaml")

from edgeseg.data import (  # noqa: E402
    DatasetError,
    DatasetNotFoundError,
    label_cache,
)
from edgeseg.data.dataset_yaml import list_image_files, load_dataset_yaml  # noqa: E402
from edgeseg.data.labels import img2label_path, load_labels, parse_label_text  # noqa: E402

GOOD_ROW = "0 0.1 0.1 0.5 0.1 0.5 0.6 0.1 0.6"


@pytest.fixture(autouse=True)
def _fresh_memory_cache():
    label_cache.clear_memory_cache()
    yield
    label_cache.clear_memory_cache()


def make_dataset(root: Path, rows: dict, split="train", corrupt=(), size=(48, 64)) -> Path:
    """Images ``<name>.jpg`` with label text ``rows[name]`` (None: no label file); names in ``corrupt`` get junk bytes."""
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i, (name, text) in enumerate(rows.items()):
        im_path = root / "images" / split / f"{name}.jpg"
        if name in corrupt:
            im_path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg at all" * 3)
        else:
            img = np.full((*size, 3), 40 * i % 255, np.uint8)
            cv2.imwrite(str(im_path), img)
        if text is not None:
            (root / "labels" / split / f"{name}.txt").write_text(text)
    return root / "images" / split


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- dataset yaml --------------------------------------------------------------------------------
def test_yaml_empty_path_is_yaml_folder_and_names_list(tmp_path):
    make_dataset(tmp_path, {"a": GOOD_ROW}, "train")
    make_dataset(tmp_path, {"b": GOOD_ROW}, "val")
    y = write_yaml(tmp_path / "d.yaml", "path:\ntrain: images/train\nval: [images/val]\nnames: [cat, dog]\n")
    cfg = load_dataset_yaml(y)
    assert cfg.root == tmp_path.resolve()
    assert cfg.train == [tmp_path.resolve() / "images/train"]
    assert cfg.val == [tmp_path.resolve() / "images/val"]
    assert cfg.names == {0: "cat", 1: "dog"} and cfg.nc == 2 and cfg.test == []


def test_yaml_relative_path_names_dict_and_txt_list(tmp_path):
    ds = tmp_path / "data" / "set"
    make_dataset(ds, {"a": GOOD_ROW, "b": GOOD_ROW}, "train")
    (ds / "train.txt").write_text("./images/train/a.jpg\nimages/train/b.jpg\n\n")
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    y = write_yaml(
        cfg_dir / "d.yaml", "path: ../data/set\ntrain: train.txt\nval: images/train\nnames:\n  0: person\n  1: car\n"
    )
    cfg = load_dataset_yaml(y)
    assert cfg.root == ds.resolve() and cfg.names == {0: "person", 1: "car"}
    files = list_image_files(cfg.train)
    assert [f.name for f in files] == ["a.jpg", "b.jpg"]
    assert files == list_image_files(cfg.val)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("path:\nval: images/train\nnames: [a]\n", "'train'"),
        ("path:\ntrain: images/train\nnames: [a]\n", "'val'"),
        ("path:\ntrain: images/train\nval: images/train\n", "'names'"),
        ("path:\ntrain: images/train\nval: images/train\nnames: {0: a, 2: b}\n", "without gaps"),
        ("path:\ntrain: images/train\nval: images/train\nnames: [a, b]\nnc: 3\n", "'nc' is 3"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_yaml_missing_or_bad_keys(tmp_path, text, match):
    make_dataset(tmp_path, {"a": GOOD_ROW})
    with pytest.raises(DatasetError, match=match):
        load_dataset_yaml(write_yaml(tmp_path / "d.yaml", text))


def test_yaml_missing_paths(tmp_path):
    make_dataset(tmp_path, {"a": GOOD_ROW})
    y = write_yaml(tmp_path / "d.yaml", "train: images/train\nval: images/nope\nnames: [a]\n")
    with pytest.raises(DatasetNotFoundError, match="images/nope"):
        load_dataset_yaml(y)
    y = write_yaml(tmp_path / "e.yaml", "path: /definitely/not/here\ntrain: a\nval: b\nnames: [a]\n")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_dataset_yaml(y)
    with pytest.raises(DatasetNotFoundError):
        load_dataset_yaml(tmp_path / "missing.yaml")


def test_yaml_real_coco8(tmp_path):
    y = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco8-seg" / "coco8-seg.yaml"
    if not y.exists():
        pytest.skip("shared data not available")
    cfg = load_dataset_yaml(y)
    assert cfg.nc == 80 and cfg.names[0] == "person"
    assert len(list_image_files(cfg.train)) == 4


# -- label parsing / verification ----------------------------------------------------------------
def test_img2label_path_uses_last_images_folder():
    p = img2label_path(f"{os.sep}data{os.sep}images{os.sep}x{os.sep}images{os.sep}train{os.sep}a.b.JPG")
    assert str(p) == f"{os.sep}data{os.sep}images{os.sep}x{os.sep}labels{os.sep}train{os.sep}a.b.txt"


def test_parse_rows_box_polygon_broken_and_duplicates():
    text = "\n".join(
        [
            GOOD_ROW,  # 1 ok
            "1 0.5 0.5 0.2 0.4",  # 2 box row
            "0 0.1 0.1 0.5",  # 3 odd count
            "0 0.1 abc 0.5 0.1 0.5 0.6",  # 4 non-numeric
            "0 0.1 0.1 0.5 0.1",  # 5 two points
            "0 0.1 0.1 1.5 0.1 0.5 0.6",  # 6 outside [0, 1]
            GOOD_ROW,  # 7 duplicate of 1
            "",  # 8 blank: ignored
            "1 -0.001 0.2 1.001 0.2 0.5 0.9",  # 9 within tolerance: clipped
        ]
    )
    cls, segs, msgs, n_broken, n_dup = parse_label_text(text, "L.txt", nc=2)
    assert cls.tolist() == [0, 1, 1]
    np.testing.assert_allclose(segs[1], [[0.4, 0.3], [0.6, 0.3], [0.6, 0.7], [0.4, 0.7]], atol=1e-6)
    assert segs[2].min() >= 0 and segs[2].max() <= 1
    assert n_broken == 4 and n_dup == 1
    joined = "\n".join(msgs)
    for line in (3, 4, 5, 6, 7):
        assert f"L.txt:{line}:" in joined
    assert "duplicate of line 1" in joined


@pytest.mark.parametrize("bad", ["2", "-1"])
def test_class_out_of_range_names_file_and_line(tmp_path, bad):
    make_dataset(tmp_path, {"a": GOOD_ROW, "b": f"{GOOD_ROW}\n\n{bad} 0.1 0.1 0.5 0.1 0.5 0.6\n"})
    files = list_image_files([tmp_path / "images/train"])
    with pytest.raises(DatasetError) as e:
        load_labels(files, nc=2)
    assert f"{tmp_path / 'labels/train/b.txt'}:3" in str(e.value) and "out of range" in str(e.value)


def test_corrupt_image_and_broken_row_skipped_with_summary(tmp_path, caplog):
    make_dataset(
        tmp_path,
        {
            "good": GOOD_ROW,
            "broken": f"{GOOD_ROW}\n0 0.1 0.2 0.3\n",
            "corrupt": GOOD_ROW,
            "nolabel": None,
            "empty": "",
        },
        corrupt=("corrupt",),
    )
    (tmp_path / "images/train/tiny.png").write_bytes(cv2.imencode(".png", np.zeros((5, 5, 3), np.uint8))[1].tobytes())
    files = list_image_files([tmp_path / "images/train"])
    with caplog.at_level(logging.WARNING, logger="edgeseg.data"):
        labels, s = load_labels(files, nc=1, cache=False)
    assert sorted(Path(lb.im_file).stem for lb in labels) == ["broken", "empty", "good", "nolabel"]
    assert (s.images, s.corrupt_images, s.missing_labels, s.empty_labels) == (4, 2, 1, 1)
    assert (s.broken_rows, s.instances) == (1, 2)
    text = caplog.text
    assert f"{tmp_path / 'labels/train/broken.txt'}:2" in text
    assert "corrupt.jpg" in text and "tiny.png" in text
    shapes = {Path(lb.im_file).stem: lb.shape for lb in labels}
    assert shapes["good"] == (48, 64)


def test_no_usable_image_is_an_error(tmp_path):
    make_dataset(tmp_path, {"c": GOOD_ROW}, corrupt=("c",))
    with pytest.raises(DatasetError, match="no usable images"):
        load_labels(list_image_files([tmp_path / "images/train"]), nc=1, cache=False)


# -- cache ---------------------------------------------------------------------------------------
def test_cache_written_reused_and_invalidated(tmp_path):
    make_dataset(tmp_path, {"a": GOOD_ROW, "b": f"{GOOD_ROW}\n0 0.1 0.1\n"})
    files = list_image_files([tmp_path / "images/train"])
    l1, s1 = load_labels(files, nc=1)
    assert not s1.from_cache and s1.cache_file == tmp_path / "labels" / "train.cache"
    assert s1.cache_file.is_file()
    l2, s2 = load_labels(files, nc=1)
    assert s2.from_cache and s2.counts() == s1.counts() and s2.messages == s1.messages
    for a, b in zip(l1, l2):
        assert a.im_file == b.im_file and a.shape == b.shape and a.cls.tolist() == b.cls.tolist()
        for sa, sb in zip(a.segments, b.segments):
            np.testing.assert_array_equal(sa, sb)
    # a changed label file invalidates the cache
    lf = tmp_path / "labels/train/a.txt"
    lf.write_text(GOOD_ROW + "\n0 0.2 0.2 0.3 0.2 0.3 0.3\n")
    os.utime(lf, ns=(os.stat(lf).st_atime_ns, os.stat(lf).st_mtime_ns + 10**9))
    _l3, s3 = load_labels(files, nc=1)
    assert not s3.from_cache and s3.instances == 3
    # a different class count is a different key
    _, s4 = load_labels(files, nc=2)
    assert not s4.from_cache


def test_corrupt_cache_file_is_ignored(tmp_path):
    make_dataset(tmp_path, {"a": GOOD_ROW})
    files = list_image_files([tmp_path / "images/train"])
    (tmp_path / "labels" / "train.cache").write_bytes(b"garbage, not an npz")
    labels, s = load_labels(files, nc=1)
    assert not s.from_cache and len(labels) == 1
    assert load_labels(files, nc=1)[1].from_cache


def test_read_only_labels_folder_keeps_cache_in_memory(tmp_path, caplog):
    make_dataset(tmp_path, {"a": GOOD_ROW, "b": GOOD_ROW})
    files = list_image_files([tmp_path / "images/train"])
    labels_dir = tmp_path / "labels"
    mode = labels_dir.stat().st_mode
    labels_dir.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        with caplog.at_level(logging.WARNING, logger="edgeseg.data"):
            _, s1 = load_labels(files, nc=1)
            _, s2 = load_labels(files, nc=1)
            label_cache.save_cache(s1.cache_file, "other-key", [], s1)  # a second save warns no more
    finally:
        labels_dir.chmod(mode)
    assert not (labels_dir / "train.cache").exists()
    assert not s1.from_cache and s2.from_cache
    assert caplog.text.count("cannot write label cache") == 1
