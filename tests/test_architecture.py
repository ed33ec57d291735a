"""Rules of ARCHITECTURE.md that import-linter does not check: private names stay in their module, the
segmenter never asks which output layout it holds, and installing edgeseg adds one top-level package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> list[Path]:
    files = [*sorted((ROOT / "edgeseg").rglob("*.py")), *sorted((ROOT / "exporters").rglob("*.py"))]
    return [f for f in files if "edgeseg/exporters" not in f.as_posix()]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "exporters":
        parts = ["edgeseg", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _private_imports(path: Path) -> list[str]:
    """``from other.module import _name`` (a private name of another module) in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            own_package = source == package and path.name == "__init__.py"
            if private and not own_package and alias.name != "_core":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {source} import {alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    files = _modules()
    assert len(files) > 50
    assert [hit for f in files for hit in _private_imports(f)] == []


def test_the_private_name_check_can_fail():
    probe = ROOT / "edgeseg" / "_architecture_probe.py"
    try:
        probe.write_text("from .detections import _hidden\nfrom .ops._native import core\n")
        assert [h.split(": ")[1] for h in _private_imports(probe)] == ["from edgeseg.detections import _hidden"]
    finally:
        probe.unlink(missing_ok=True)


def test_segmenter_does_not_branch_on_the_layout_kind():
    """The segmenter calls ``OutputLayout.decode``; it never reads ``kind``/``output_kind`` or type-tests a layout."""
    tree = ast.parse((ROOT / "edgeseg" / "segmenter.py").read_text(encoding="utf-8"))
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not attributes & {"kind", "output_kind", "preds_index", "levels"}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"SplitLayout", "SingleOutputLayout", "getattr"}
    assert "decode" in attributes
