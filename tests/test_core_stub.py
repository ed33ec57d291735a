"""edgeseg/_core.pyi against the compiled edgeseg._core: same public names, same parameters.

For every function the parameter names, their order and kind (positional-only, keyword-only, *args,
**kwargs), which of them have defaults, and the default values the stub spells out are compared with the
signature pybind11 writes on the first line of the function's ``__doc__`` (or the numbered lines of an
overloaded function). Types are not compared (mypy checks the stub's types where the wrappers call it).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

STUB = Path(__file__).resolve().parents[1] / "edgeseg" / "_core.pyi"

_OPEN, _CLOSE = "([{", ")]}"
_UNNAMED = re.compile(r"arg\d+")  # pybind11's name for an argument bound without py::arg


@dataclass(frozen=True)
class Param:
    kind: str  # "posonly", "normal", "kwonly", "varargs" or "varkw"
    name: str | None  # None: unnamed in the bindings (any name will do; must be positional-only)
    default: str | None  # the default's source text; None when there is none


# ---- the pybind11 side --------------------------------------------------------------------------------


def _split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at each ``sep`` outside brackets and quotes, parts stripped."""
    parts: list[str] = []
    cur: list[str] = []
    depth, quote, escaped = 0, "", False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if depth or quote:
        raise ValueError(f"unbalanced brackets or quotes in {text!r}")
    tail = "".join(cur).strip()
    if tail or parts:
        parts.append(tail)
    return parts


def _close_paren(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``text[start]`` (quotes skipped)."""
    depth, quote = 0, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"no closing bracket in {text!r}")


def parse_signature(name: str, line: str) -> list[Param]:
    """The parameters of one pybind11 signature line ``name(a: T, b: U = d, /, *, c: V = e) -> R``."""
    line = line.strip()
    if not line.startswith(name + "("):
        raise ValueError(f"expected a signature of {name}, got {line!r}")
    end = _close_paren(line, len(name))
    rest = line[end + 1 :].strip()
    if rest and not rest.startswith("->"):
        raise ValueError(f"unexpected text after the parameters of {name}: {rest!r}")
    params: list[Param] = []
    kind = "normal"
    for part in _split_top(line[len(name) + 1 : end]):
        if part == "/":
            params = [Param("posonly", p.name, p.default) for p in params]
            continue
        if part == "*":
            kind = "kwonly"
            continue
        pname, _, annotation = part.partition(":")
        pname = pname.strip()
        default = None
        pieces = _split_top(annotation, "=")
        if len(pieces) > 1:
            default = "=".join(pieces[1:]).strip()
        if pname.startswith("**"):
            params.append(Param("varkw", pname[2:], None))
        elif pname.startswith("*"):
            params.append(Param("varargs", pname[1:], None))
            kind = "kwonly"
        elif _UNNAMED.fullmatch(pname):
            params.append(Param("posonly", None, default))
        else:
            if not pname.isidentifier():
                raise ValueError(f"bad parameter {part!r} in {line!r}")
            params.append(Param(kind, pname, default))
    return params


def doc_signatures(name: str, doc: str | None) -> list[list[Param]]:
    """One parameter list per signature in a pybind11 docstring (several for an overloaded function)."""
    lines = (doc or "").splitlines()
    if not lines:
        raise ValueError(f"{name} has no docstring (not a pybind11 function?)")
    if len(lines) > 1 and lines[1].strip() == "Overloaded function.":
        numbered = re.compile(r"\d+\.\s+(" + re.escape(name) + r"\(.*)")
        sigs = [parse_signature(name, m.group(1)) for m in map(numbered.fullmatch, lines[2:]) if m]
        if not sigs:
            raise ValueError(f"{name} is overloaded but no numbered signature was found")
        return sigs
    return [parse_signature(name, lines[0])]


def module_names(module: ModuleType) -> set[str]:
    return {n for n in dir(module) if not (n.startswith("__") and n.endswith("__"))}


# ---- the stub side ------------------------------------------------------------------------------------


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "overload") or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in node.decorator_list
    )


def _stub_params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Param]:
    a = fn.args
    positional = [("posonly", p) for p in a.posonlyargs] + [("normal", p) for p in a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [Param(k, p.arg, None if d is None else ast.unparse(d)) for (k, p), d in zip(positional, defaults)]
    if a.vararg:
        params.append(Param("varargs", a.vararg.arg, None))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        params.append(Param("kwonly", p.arg, None if d is None else ast.unparse(d)))
    if a.kwarg:
        params.append(Param("varkw", a.kwarg.arg, None))
    return params


def stub_declarations(source: str) -> dict[str, Any]:
    """Top-level names the stub declares: a function's name -> its signatures (one per overload), a class's
    name -> the ClassDef, a public variable's name -> the statement. Imports and private aliases (``_X = ...``)
    are not declarations of the module's contents."""
    decl: dict[str, Any] = {}
    overloads: dict[str, list[list[Param]]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _is_overload(node):
                overloads.setdefault(node.name, []).append(_stub_params(node))
                decl[node.name] = overloads[node.name]
            elif node.name not in overloads:  # an implementation after overloads does not count
                decl[node.name] = [_stub_params(node)]
        elif isinstance(node, ast.ClassDef):
            decl[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and not t.id.startswith("_"):
                    decl[t.id] = node
    return decl


# ---- the comparison -----------------------------------------------------------------------------------


def _same_default(stub_text: str, doc_text: str) -> bool:
    """False only when both defaults are literals and differ (``...`` in the stub matches anything)."""
    if stub_text == "...":
        return True
    try:
        s, d = ast.literal_eval(stub_text), ast.literal_eval(doc_text)
    except (ValueError, SyntaxError):
        return True  # e.g. pybind11's repr of an enum value: only its presence is compared
    return type(s) is type(d) and s == d


def compare_params(where: str, stub: list[Param], doc: list[Param]) -> list[str]:
    def show(ps: list[Param]) -> str:
        return "(" + ", ".join(f"{p.name or '?'}{'=' if p.default is not None else ''}" for p in ps) + ")"

    if len(stub) != len(doc):
        return [f"{where}: stub has {len(stub)} parameters {show(stub)}, module has {len(doc)} {show(doc)}"]
    errors = []
    for i, (s, d) in enumerate(zip(stub, doc)):
        label = f"{where}: parameter {i} ({s.name!r} in the stub, {d.name or 'unnamed'!r} in the module)"
        if d.name is not None and s.name != d.name:
            errors.append(f"{label}: names differ")
        if s.kind != d.kind:
            hint = " (the bindings give no names: make it positional-only, '/')" if d.name is None else ""
            errors.append(f"{label}: stub kind {s.kind}, module kind {d.kind}{hint}")
        if (s.default is None) != (d.default is None):
            has = "has" if s.default is not None else "has no"
            errors.append(f"{label}: the stub {has} default, the module's is {d.default!r}")
        elif s.default is not None and d.default is not None and not _same_default(s.default, d.default):
            errors.append(f"{label}: default {s.default} in the stub, {d.default} in the module")
    return errors


def check_stub(source: str, module: ModuleType) -> list[str]:
    """Every disagreement between a stub's text and a compiled pybind11 module, as messages."""
    decl = stub_declarations(source)
    names = module_names(module)
    errors = [f"missing from the stub: {n}" for n in sorted(names - decl.keys())]
    errors += [f"in the stub but not in the module: {n}" for n in sorted(decl.keys() - names)]
    for name in sorted(names & decl.keys()):
        obj = getattr(module, name)
        if isinstance(obj, type):
            errors += _check_class(name, obj, decl[name])
            continue
        if type(obj).__name__ != "builtin_function_or_method":
            errors.append(f"{name}: a {type(obj).__name__}, not a function or class; this test compares those only")
            continue
        if not isinstance(decl[name], list):
            errors.append(f"{name}: a function in the module, not declared with def in the stub")
            continue
        try:
            doc = doc_signatures(name, obj.__doc__)
        except ValueError as exc:
            errors.append(f"{name}: cannot read the pybind11 signature: {exc}")
            continue
        stub = decl[name]
        if len(stub) != len(doc):
            errors.append(f"{name}: {len(stub)} signature(s) in the stub, {len(doc)} overload(s) in the module")
            continue
        for k, (s, d) in enumerate(zip(stub, doc)):
            errors += compare_params(name if len(doc) == 1 else f"{name} (overload {k + 1})", s, d)
    return errors


def _public_methods(cls: type) -> set[str]:
    """The methods a pybind11 class defines itself: ``__init__`` and the public ones."""
    return {n for n, v in vars(cls).items() if (n == "__init__" or not n.startswith("_")) and callable(v)}


def _check_class(name: str, cls: type, node: Any) -> list[str]:
    """A pybind11 class against its ``class`` statement: the same methods, each with the same parameters
    (``self`` is the first parameter on both sides; pybind11 names it ``self`` too)."""
    if not isinstance(node, ast.ClassDef):
        return [f"{name}: a class in the module, not declared with class in the stub"]
    stub_methods = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
    stub_names = {n for n in stub_methods if n == "__init__" or not n.startswith("_")}
    module_methods = _public_methods(cls)
    errors = [f"{name}.{m}: missing from the stub" for m in sorted(module_methods - stub_names)]
    errors += [f"{name}.{m}: in the stub but not in the module" for m in sorted(stub_names - module_methods)]
    for method in sorted(module_methods & stub_names):
        where = f"{name}.{method}"
        try:
            doc = doc_signatures(method, getattr(cls, method).__doc__)
        except ValueError as exc:
            errors.append(f"{where}: cannot read the pybind11 signature: {exc}")
            continue
        if len(doc) != 1:
            errors.append(f"{where}: overloaded in the module; the stub has one signature")
            continue
        errors += compare_params(where, _stub_params(stub_methods[method]), doc[0])
    return errors


# ---- tests --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def core() -> ModuleType:
    from edgeseg import _core

    return _core


@pytest.fixture(scope="module")
def stub_source() -> str:
    return STUB.read_text(encoding="utf-8")


def test_stub_declares_exactly_the_module_names(core, stub_source):
    declared = set(stub_declarations(stub_source))
    names = module_names(core)
    assert names, "edgeseg._core exports nothing?"
    assert declared == names, f"missing from the stub: {sorted(names - declared)}; extra: {sorted(declared - names)}"


def test_stub_signatures_match_pybind11(core, stub_source):
    assert check_stub(stub_source, core) == []


def test_module_exports_only_functions_and_classes(core):
    """Attributes and overloads would need more than this test checks by hand; say so when they come."""
    classes = []
    for name in module_names(core):
        obj = getattr(core, name)
        if isinstance(obj, type):
            classes.append(name)
            for method in _public_methods(obj):
                assert len(doc_signatures(method, getattr(obj, method).__doc__)) == 1, f"{name}.{method} overloaded"
            continue
        assert type(obj).__name__ == "builtin_function_or_method", f"{name}: {type(obj).__name__}"
        assert len(doc_signatures(name, obj.__doc__)) == 1, f"{name} is overloaded"
    assert classes == ["Tracker"]


def test_checker_reports_a_wrong_class_stub(core, stub_source):
    """The real stub with the Tracker class broken: a method gone, a parameter renamed, a default changed."""
    tree = ast.parse(stub_source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tracker")
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    cls.body.remove(methods["reset"])
    methods["update"].args.args[1].arg = "xyxy"  # boxes
    methods["__init__"].args.defaults[0] = ast.Constant(0.6)  # high_thresh = 0.5
    errors = check_stub(ast.unparse(tree), core)
    text = "\n".join(errors)
    assert "Tracker.reset: missing from the stub" in errors
    assert re.search(r"Tracker.update: parameter 1 \('xyxy' in the stub, 'boxes' in the module\): names differ", text)
    assert re.search(r"Tracker.__init__: parameter 1 .*: default 0.6 in the stub, 0.5 in the module", text)
    assert len(errors) == 3, text


def test_py_typed_marker():
    assert (STUB.parent / "py.typed").is_file()


def test_parse_signature_nested_types_and_defaults():
    line = (
        "f(a: numpy.ndarray[numpy.float32], b: collections.abc.Sequence[tuple[typing.SupportsInt | "
        "typing.SupportsIndex, int]], c: dict[str, int] = {'x, y': 1}, d: str = 'a=b, (c', "
        "e: typing.SupportsFloat | typing.SupportsIndex = 0.25, f: object = None) -> tuple[int, int]"
    )
    assert parse_signature("f", line) == [
        Param("normal", "a", None),
        Param("normal", "b", None),
        Param("normal", "c", "{'x, y': 1}"),
        Param("normal", "d", "'a=b, (c'"),
        Param("normal", "e", "0.25"),
        Param("normal", "f", "None"),
    ]
    assert parse_signature("g", "g() -> None") == []
    assert parse_signature("h", "h(a: int, /, b: int, *, c: bool = True) -> None") == [
        Param("posonly", "a", None),
        Param("normal", "b", None),
        Param("kwonly", "c", "True"),
    ]
    assert parse_signature("k", "k(*args, **kwargs) -> None") == [
        Param("varargs", "args", None),
        Param("varkw", "kwargs", None),
    ]
    assert parse_signature("u", "u(arg0: int, arg1: float = 1.0) -> int") == [
        Param("posonly", None, None),
        Param("posonly", None, "1.0"),
    ]
    with pytest.raises(ValueError):
        parse_signature("f", "g(a: int) -> None")
    with pytest.raises(ValueError):
        parse_signature("f", "f(a: list[int) -> None")


class _Doc:
    """Stands in for a pybind11 function: the checker reads only ``type(obj).__name__`` and ``__doc__``."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc


def _fake_module(**docs: str) -> ModuleType:
    """A module whose members look like pybind11 functions with the given docstrings."""
    mod = ModuleType("fake_core")
    fake_function = type("builtin_function_or_method", (_Doc,), {})
    for name, doc in docs.items():
        setattr(mod, name, fake_function(doc))
    return mod


def test_checker_handles_overloads_and_unnamed_arguments():
    mod = _fake_module(
        scale=textwrap.dedent("""\
            scale(*args, **kwargs)
            Overloaded function.

            1. scale(x: float, factor: float = 2.0) -> float

            2. scale(x: numpy.ndarray[numpy.float32], factor: float = 2.0) -> numpy.ndarray[numpy.float32]
            """),
        add=textwrap.dedent("""\
            add(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex) -> int
            """),
    )
    good = textwrap.dedent("""\
        from typing import overload
        @overload
        def scale(x: float, factor: float = 2.0) -> float: ...
        @overload
        def scale(x: NDArray[np.float32], factor: float = ...) -> NDArray[np.float32]: ...
        def add(a: int, b: int, /) -> int: ...
        """)
    assert check_stub(good, mod) == []

    one_overload = good.replace("@overload\ndef scale(x: NDArray", "def scale2(x: NDArray")
    assert "in the stub but not in the module: scale2" in check_stub(one_overload, mod)
    assert "scale: 1 signature(s) in the stub, 2 overload(s) in the module" in check_stub(one_overload, mod)

    keyword_add = good.replace("def add(a: int, b: int, /)", "def add(a: int, b: int)")
    errors = check_stub(keyword_add, mod)
    assert len(errors) == 2 and all("positional-only" in e for e in errors), errors


def test_checker_reports_a_wrong_stub(core, stub_source):
    """The real stub, broken on purpose: one function gone, one parameter renamed, one default dropped,
    one default changed, one parameter added, one function too many."""
    tree = ast.parse(stub_source)
    fns = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    tree.body.remove(fns["nms"])
    fns["decode"].args.args[1].arg = "num_classes"  # nc
    fns["polygons"].args.defaults.clear()  # all = False
    fns["letterbox"].args.defaults[1] = ast.Constant(True)  # auto = False
    fns["dequantize"].args.args.append(ast.arg("extra"))
    tree.body.append(ast.parse("def not_in_core() -> None: ...").body[0])
    wrong = ast.unparse(tree)

    errors = check_stub(wrong, core)
    text = "\n".join(errors)
    assert "missing from the stub: nms" in errors
    assert "in the stub but not in the module: not_in_core" in errors
    assert re.search(r"decode: parameter 1 \('num_classes' in the stub, 'nc' in the module\): names differ", text)
    assert re.search(r"polygons: parameter 3 .*'all'.*: the stub has no default, the module's is 'False'", text)
    assert re.search(r"letterbox: parameter 4 .*'auto'.*: default True in the stub, False in the module", text)
    assert re.search(r"dequantize: stub has 4 parameters \(q, scale, zero_point, extra\), module has 3", text)
    assert len(errors) == 6, text

    # and a stub written by hand that gets one name wrong
    hand = "def quantised_threshold(conf: float, scale: float, zp: float) -> float: ..."
    errors = check_stub(hand, core)
    assert "quantised_threshold: parameter 2 ('zp' in the stub, 'zero_point' in the module): names differ" in errors
    assert "missing from the stub: decode" in errors
