"""The one table of model formats (edgeseg.formats): backends, exporters, the CLI and reports read it, and
no other module spells a model suffix."""

from __future__ import annotations

import ast
import inspect
from importlib import import_module
from pathlib import Path

import pytest

from edgeseg import formats
from edgeseg.backends import select_backend
from edgeseg.formats import FORMATS, PLANNED_FORMATS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.exporter is not None])
def test_export_options_match_the_exporters_signature(name):
    """The options the table lists are exactly those the exporter's export() takes (besides the model)."""
    pytest.importorskip("torch")
    fmt = FORMATS[name]
    params = list(inspect.signature(import_module(fmt.exporter_module).export).parameters)
    assert set(params[1:]) == set(fmt.export_options), name


@pytest.mark.parametrize(
    ("path", "backend"),
    [
        ("m.onnx", "onnxruntime"),
        ("M.ONNX", "onnxruntime"),
        ("m.pt", "torch"),
        ("m.pth", "torch"),
        ("m.safetensors", "torch"),
        ("m.xml", "openvino"),
        ("m_openvino_model", "openvino"),
        ("m_int8_openvino_model", "openvino"),
        ("m.param", "ncnn"),
        ("m_ncnn_model", "ncnn"),
        ("m.tflite", "tflite"),
        ("m_full_integer_quant_edgetpu.tflite", "edgetpu"),
    ],
)
def test_backend_of_every_name_comes_from_the_table(path, backend):
    assert formats.format_of_path(path).backend == backend
    assert select_backend(path).name == backend


def test_unknown_and_planned_names():
    assert formats.format_of_path("m.engine") is None
    assert formats.describe_path(Path("m.engine")) == "engine"
    with pytest.raises(ValueError, match=r"\.onnx.*_openvino_model/.*_edgetpu\.tflite"):
        select_backend("m.engine")
    with pytest.raises(ValueError, match="not yet supported"):
        formats.format_named("coreml")
    with pytest.raises(ValueError, match="unknown format"):
        formats.format_named("nope")
    assert formats.format_named(".ONNX").name == "onnx"


def test_checkpoint_and_exported_names():
    assert all(formats.is_checkpoint(f"a{s}") for s in (".pt", ".PTH", ".safetensors"))
    assert not formats.is_checkpoint("a.onnx")
    for name in ("a.onnx", "a.tflite", "a.xml", "a.param", "a.bin", "a.engine", "a_edgetpu.tflite"):
        assert formats.is_exported_model(name), name
    assert not formats.is_exported_model("a.pt")


def test_model_files_and_export_targets(tmp_path):
    xml = tmp_path / "m.xml"
    xml.write_text("<net/>")
    (tmp_path / "m.bin").write_bytes(b"\0")
    assert formats.model_files(xml) == [xml, tmp_path / "m.bin"]
    assert formats.model_files(tmp_path, skip=("m.bin",)) == [xml]
    with pytest.raises(FileNotFoundError):
        formats.model_files(tmp_path / "missing.onnx")
    assert FORMATS["onnx"].export_target("yolo", "fp16") == "yolo_fp16.onnx"
    assert FORMATS["openvino"].export_target("yolo", "int8") == "yolo_int8_openvino_model"
    assert FORMATS["tflite"].export_target("yolo") == "yolo_saved_model"
    with pytest.raises(ValueError, match="does not export"):
        _ = FORMATS["torch"].exporter_module


def _suffix_literals(path: Path) -> list[str]:
    """String constants (not docstrings) that name a model format by its suffix or name ending: a bare
    suffix (".onnx"), a glob ("*.xml") or a name ending ("_ncnn_model"). Fixed file names inside a model
    folder or a run folder ("model.ncnn.param", "best.pt") are names, not format tests, and pass."""
    suffixes = {s for f in FORMATS.values() for s in f.suffixes} | set(PLANNED_FORMATS.values())
    endings = {e for f in FORMATS.values() for e in f.name_endings}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            value = node.value.strip().lower()
            if value.lstrip("*") in suffixes or any(value.endswith(e) for e in endings):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_the_table_is_the_only_place_a_suffix_is_spelled():
    files = [*sorted((ROOT / "edgeseg").rglob("*.py")), *sorted((ROOT / "exporters").rglob("*.py"))]
    files = [f for f in files if "edgeseg/exporters" not in f.as_posix() and f.name != "formats.py"]
    assert len(files) > 50
    found = [hit for f in files for hit in _suffix_literals(f)]
    assert found == []


def test_the_scan_finds_a_spelled_suffix():
    """The scan above can fail: a module that tests a suffix itself is found."""
    bad = ROOT / "tests" / "_formats_scan_probe.py"
    try:
        bad.write_text('"""doc .onnx"""\nIS_ONNX = path.endswith(".onnx")\nFOLDER = "m_ncnn_model"\nOK = "best.pt"\n')
        assert sorted(h.split(": ")[1] for h in _suffix_literals(bad)) == ["'.onnx'", "'m_ncnn_model'"]
    finally:
        bad.unlink(missing_ok=True)
