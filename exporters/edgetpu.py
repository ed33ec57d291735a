"""Coral Edge TPU: a static check of a .tflite against the Edge TPU's published requirements, the
``edgetpu_compiler`` call, and a parser for its log.

    from edgeseg.exporters.edgetpu import static_check, compile_model
    print(static_check("yolov8n-seg_int8_split.tflite").summary())
    report = compile_model("yolov8n-seg_int8_split.tflite")      # needs edgetpu_compiler (Linux x86-64)

The static check reads the flatbuffer with the TFLite schema module that ships with ai-edge-litert
(or TensorFlow): no interpreter, no compiler. It applies the rules of Coral's "TensorFlow models on the
Edge TPU" page (compiler 16): every tensor int8/uint8-quantised (int32 only for constant biases and
shape operands), static shapes, at most 3 dimensions larger than 1 (the innermost), and the supported
operation list with its limitations. The compiler maps operations in execution order until the first
one it cannot map; that one and everything after it run on the CPU. So the check reports the ops that
would map in the first (only) Edge TPU subgraph, the first op that cannot map and why, and how many
ops are supported in total. Only the compiler is authoritative (it may still decline an op, e.g. for
size); :func:`compile_model` runs it and parses its report.

``export(model, ...)`` (format "edgetpu"): the full-int8 split-output TFLite export, the static check,
then the compiler.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from edgeseg.formats import FORMATS

from .common import ExportError
from .tflite_schema import enum_names, op_names, tflite_schema

__all__ = [
    "COMPILER_INSTALL",
    "SUPPORTED_OPS",
    "CompileReport",
    "EdgeTPUCheck",
    "OpCheck",
    "compile_model",
    "export",
    "parse_compiler_log",
    "static_check",
]

COMPILER_INSTALL = (
    "edgetpu_compiler is not installed (it runs on Debian/Ubuntu x86-64 only). Install it with:\n"
    "  curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -\n"
    "  echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
    "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list\n"
    "  sudo apt-get update && sudo apt-get install edgetpu-compiler\n"
    "(see https://coral.ai/docs/edgetpu/compiler/), or compile in Coral's Colab notebook. "
    "The static check (edgeseg.exporters.edgetpu.static_check) needs no compiler."
)

# Operation -> limitation checked here ("" = none). Names as in the TFLite BuiltinOperator enum.
SUPPORTED_OPS: dict[str, str] = {
    "ADD": "",
    "SUB": "",
    "MUL": "",
    "MAXIMUM": "",
    "MINIMUM": "",
    "SQUARED_DIFFERENCE": "",
    "LOGISTIC": "",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "TANH": "",
    "PRELU": "",
    "HARD_SWISH": "",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "TRANSPOSE_CONV": "",
    "FULLY_CONNECTED": "default weights format",
    "AVERAGE_POOL_2D": "no fused activation",
    "MAX_POOL_2D": "no fused activation",
    "CONCATENATION": "no fused activation; a constant input only as the second of two, all zeros",
    "L2_NORMALIZATION": "",
    "LSTM": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "",
    "MEAN": "no reduction over the batch dimension",
    "SUM": "no reduction over the batch dimension",
    "REDUCE_MAX": "no reduction over the batch dimension",
    "REDUCE_MIN": "no reduction over the batch dimension",
    "PAD": "no padding of the batch dimension",  # checked
    "PACK": "no packing in the batch dimension",
    "SPLIT": "no splitting in the batch dimension",
    "SPLIT_V": "no splitting in the batch dimension",
    "SLICE": "",
    "STRIDED_SLICE": "stride 1, no ellipsis/new-axis masks",
    "SQUEEZE": "",
    "EXPAND_DIMS": "",
    "RESHAPE": "",
    "TRANSPOSE": "",
    "RESIZE_BILINEAR": "input and output at most 3-D (batch 1)",
    "RESIZE_NEAREST_NEIGHBOR": "input and output at most 3-D (batch 1)",
    "SOFTMAX": "1-D input of at most 16,000 elements",
    "SPACE_TO_DEPTH": "",
    "DEPTH_TO_SPACE": "",
    "QUANTIZE": "",
    "RSQRT": "",
}
_QUANT_TYPES = ("INT8", "UINT8")


@dataclass
class OpCheck:
    index: int
    op: str
    ok: bool
    reason: str = ""


@dataclass
class EdgeTPUCheck:
    """What the static check found (see the module docstring)."""

    path: Path
    ops: list[OpCheck]
    model_problems: list[str] = field(default_factory=list)  # problems that stop the whole model

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    @property
    def n_supported(self) -> int:
        return 0 if self.model_problems else sum(o.ok for o in self.ops)

    @property
    def first_unsupported(self) -> OpCheck | None:
        return next((o for o in self.ops if not o.ok), None)

    @property
    def n_mappable(self) -> int:
        """Ops before the first unsupported one: what one Edge TPU subgraph could hold."""
        if self.model_problems:
            return 0
        first = self.first_unsupported
        return self.n_ops if first is None else first.index

    @property
    def share_mappable(self) -> float:
        return self.n_mappable / self.n_ops if self.n_ops else 0.0

    @property
    def subgraphs(self) -> int:
        """Edge TPU subgraphs the compiler would create (0 or 1: it stops at the first unsupported op)."""
        return 1 if self.n_mappable else 0

    def op_counts(self) -> dict[str, tuple[int, int]]:
        """op name -> (count, count that can map in the Edge TPU subgraph)."""
        counts: dict[str, list[int]] = {}
        limit = self.n_mappable
        for o in self.ops:
            c = counts.setdefault(o.op, [0, 0])
            c[0] += 1
            c[1] += int(o.index < limit)
        return {k: (v[0], v[1]) for k, v in sorted(counts.items())}

    def summary(self) -> str:
        lines = [
            (
                f"Edge TPU static check of {self.path.name}: {self.n_mappable}/{self.n_ops} ops "
                f"({100 * self.share_mappable:.1f}%) can map to the Edge TPU in {self.subgraphs} subgraph(s); "
                f"{self.n_supported}/{self.n_ops} are supported ops"
            )
        ]
        for p in self.model_problems:
            lines.append(f"  model: {p}")
        first = self.first_unsupported
        if first is not None:
            lines.append(
                f"  first op that cannot map: #{first.index} {first.op}: {first.reason} "
                f"(it and the {self.n_ops - first.index - 1} ops after it would run on the CPU)"
            )
        for name, (n, mapped) in self.op_counts().items():
            lines.append(f"  {name:<24} {n:4d}  {mapped:4d} mappable")
        return "\n".join(lines)


# ---- flatbuffer reading -----------------------------------------------------------------------------


def _load_model(path: Path):
    schema = tflite_schema()
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # corrupt flatbuffer
        raise ExportError(f"cannot parse {path} as a TFLite model: {exc}") from exc
    return schema, model


def _opt(options, name, default=None):
    return getattr(options, name, default) if options is not None else default


def static_check(path: str | PathLike) -> EdgeTPUCheck:
    """Check a .tflite against the Edge TPU requirements (see the module docstring)."""
    path = Path(fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    schema, model = _load_model(path)
    names_of_ops = op_names(schema, model)
    type_names = enum_names(schema.TensorType)
    act_names = enum_names(schema.ActivationFunctionType)
    problems: list[str] = []
    if not model.subgraphs:
        raise ExportError(f"{path} holds no subgraph")
    if len(model.subgraphs) > 1:
        problems.append(f"{len(model.subgraphs)} subgraphs (control flow); the Edge TPU compiles one")
    graph = model.subgraphs[0]
    tensors = graph.tensors or []
    buffers = model.buffers or []

    def is_const(t) -> bool:
        b = buffers[t.buffer] if t.buffer is not None and t.buffer < len(buffers) else None
        if b is None:
            return False
        return (b.data is not None and len(b.data) > 0) or bool(getattr(b, "size", 0))

    def shape(t) -> list[int]:
        return [int(v) for v in (t.shape if t.shape is not None else [])]

    def tensor_problem(i: int) -> str:
        t = tensors[i]
        ttype = type_names.get(t.type, str(t.type))
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        sig = t.shapeSignature if getattr(t, "shapeSignature", None) is not None else None
        if sig is not None and any(int(d) < 0 for d in sig):
            return f"tensor '{name}' has a dynamic shape {list(sig)}"
        q = t.quantization
        quantised = q is not None and q.scale is not None and len(q.scale) > 0
        if ttype in _QUANT_TYPES:
            if not quantised:
                return f"tensor '{name}' is {ttype} without quantisation parameters"
        elif ttype == "INT32" and is_const(t):
            pass  # biases and shape/axis operands
        else:
            return f"tensor '{name}' is {ttype}; the Edge TPU needs int8/uint8-quantised tensors"
        dims = shape(t)
        if not is_const(t) and sum(d > 1 for d in dims[:-3]) > 0:  # weights may be 4-D
            return f"tensor '{name}' {dims} has a dimension > 1 outside the 3 innermost"
        return ""

    def const_values(i: int):
        t = tensors[i]
        b = buffers[t.buffer] if t.buffer is not None and t.buffer < len(buffers) else None
        if b is None or b.data is None or type_names.get(t.type) != "INT32":
            return None
        import numpy as np

        return np.frombuffer(bytes(bytearray(b.data)), dtype="<i4")

    ops: list[OpCheck] = []
    for k, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        name = names_of_ops[op.opcodeIndex]
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            ops.append(OpCheck(k, f"CUSTOM({custom})", False, "custom ops do not map"))
            continue
        if name not in SUPPORTED_OPS:
            ops.append(OpCheck(k, name, False, "not in the Edge TPU's supported operations"))
            continue
        reason = ""
        for i in list(op.inputs if op.inputs is not None else []) + list(op.outputs if op.outputs is not None else []):
            if i >= 0:
                reason = tensor_problem(int(i))
                if reason:
                    break
        options = op.builtinOptions
        if not reason:
            reason = _op_limit(name, op, options, tensors, act_names, is_const, shape, const_values)
        ops.append(OpCheck(k, name, not reason, reason))
    return EdgeTPUCheck(path=path, ops=ops, model_problems=problems)


def _op_limit(name, op, options, tensors, act_names, is_const, shape, const_values) -> str:
    act = act_names.get(_opt(options, "fusedActivationFunction", 0), "NONE")
    inputs = [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
    in_shape = shape(tensors[inputs[0]]) if inputs else []
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        if _opt(options, "dilationWFactor", 1) != _opt(options, "dilationHFactor", 1):
            return "different dilation in x and y"
    elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and act != "NONE":
        return f"fused activation {act}"
    elif name == "CONCATENATION":
        if act != "NONE":
            return f"fused activation {act}"
        consts = [i for i in inputs if is_const(tensors[i])]
        if consts and (len(inputs) != 2 or consts != [inputs[1]]):
            return "a constant input that is not the second of exactly two"
    elif name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
        pass  # axes are a constant tensor; batch-axis reductions are rare in detectors
    elif name in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        if len(in_shape) == 4 and in_shape[0] != 1:
            return f"input {in_shape} is not 3-D (batch {in_shape[0]})"
    elif name == "SOFTMAX":
        n = 1
        for d in in_shape:
            n *= max(d, 1)
        if sum(d > 1 for d in in_shape) > 1 or n > 16000:
            return f"input {in_shape} is not 1-D with at most 16,000 elements"
    elif name == "STRIDED_SLICE":
        strides = const_values(inputs[3]) if len(inputs) > 3 else None
        if strides is not None and (strides != 1).any():
            return f"strides {strides.tolist()} (only stride 1 maps)"
        if _opt(options, "ellipsisMask", 0) or _opt(options, "newAxisMask", 0):
            return "ellipsis or new-axis mask"
    elif name == "PAD":
        pads = const_values(inputs[1]) if len(inputs) > 1 else None
        if pads is not None and pads.size >= 2 and len(in_shape) == 4 and (pads[:2] != 0).any():
            return "padding of the batch dimension"
    elif name == "FULLY_CONNECTED" and _opt(options, "weightsFormat", 0) != 0:
        return "non-default weights format"
    return ""


# ---- the compiler -----------------------------------------------------------------------------------


@dataclass
class CompileReport:
    """What edgetpu_compiler said (parsed from its log)."""

    output: Path | None
    version: str | None
    ops_on_tpu: int | None
    ops_on_cpu: int | None
    subgraphs: int | None
    on_chip_memory: str | None
    off_chip_memory: str | None
    per_op: list[tuple[str, int, str]] = field(default_factory=list)  # (op, count, status)
    log: str = ""

    @property
    def total_ops(self) -> int | None:
        if self.ops_on_tpu is None or self.ops_on_cpu is None:
            return None
        return self.ops_on_tpu + self.ops_on_cpu

    def summary(self) -> str:
        return (
            f"edgetpu_compiler {self.version or '?'}: {self.ops_on_tpu}/{self.total_ops} ops on the Edge TPU, "
            f"{self.subgraphs} subgraph(s), on-chip {self.on_chip_memory}, off-chip {self.off_chip_memory}; "
            f"output {self.output}"
        )


def _int(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
    return int(m.group(1)) if m else None


def _str(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
    return m.group(1).strip() if m else None


def parse_compiler_log(text: str) -> CompileReport:
    """Parse edgetpu_compiler's stdout and its ``*_edgetpu.log`` (either or both, concatenated)."""
    per_op = []
    for m in re.finditer(r"^\s*([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$", text, re.MULTILINE):
        if m.group(1) in ("Operator",):
            continue
        per_op.append((m.group(1), int(m.group(2)), m.group(3)))
    out = _str(r"^Output model:\s*(.+)$", text)
    return CompileReport(
        output=Path(out) if out else None,
        version=_str(r"Edge TPU Compiler version\s+(\S+)", text),
        ops_on_tpu=_int(r"Number of operations that will run on Edge TPU:\s*(\d+)", text),
        ops_on_cpu=_int(r"Number of operations that will run on CPU:\s*(\d+)", text),
        subgraphs=_int(r"Number of Edge TPU subgraphs:\s*(\d+)", text),
        on_chip_memory=_str(r"On-chip memory used for caching model parameters:\s*(.+)$", text),
        off_chip_memory=_str(r"Off-chip memory used for streaming uncached model parameters:\s*(.+)$", text),
        per_op=per_op,
        log=text,
    )


def compile_model(
    path: str | PathLike,
    output_dir: str | PathLike | None = None,
    *,
    compiler: str | None = None,
    timeout: float = 600.0,
) -> CompileReport:
    """Run edgetpu_compiler on a full-int8 .tflite; return its parsed report.

    Raises ExportError with install instructions when the compiler is not installed, and with its
    output when it fails.
    """
    path = Path(fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    exe = compiler or shutil.which("edgetpu_compiler")
    if not exe or (not Path(exe).exists() and not shutil.which(exe)):
        raise ExportError(COMPILER_INSTALL)
    out_dir = Path(fspath(output_dir)) if output_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "-s", "-o", fspath(out_dir), fspath(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ExportError(COMPILER_INSTALL) from None
    except subprocess.TimeoutExpired:
        raise ExportError(f"edgetpu_compiler did not finish within {timeout:.0f} s") from None
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    log_file = out_dir / (path.stem + "_edgetpu.log")
    if log_file.is_file():
        text += "\n" + log_file.read_text(errors="replace")
    if proc.returncode != 0:
        raise ExportError(f"edgetpu_compiler failed (exit {proc.returncode}): {text.strip()[-2000:]}")
    report = parse_compiler_log(text)
    if report.output is None:
        candidate = out_dir / (path.stem + FORMATS["edgetpu"].name_endings[0])
        report.output = candidate if candidate.is_file() else None
    return report


def export(
    model_path_or_module: Any,
    *,
    imgsz=640,
    data=None,
    fraction: float = 1.0,
    calib_indices=None,
    int8: bool = True,
    output=None,
    check_image=None,
    simplify: bool = True,
    threads: int = 2,
    compiler: str | None = None,
    head: str | None = None,
):
    """Full-int8 split-output TFLite export (:func:`edgeseg.exporters.tflite.export`; ``data`` is required),
    the static check, then edgetpu_compiler. Returns the ExportResult (path: the ``*_edgetpu.tflite``)
    with the check and the compiler report in ``notes``. Without a compiler: ExportError with install
    instructions, after the int8 .tflite and its static check have been written/printed."""
    from .tflite import export as export_tflite

    if not int8:
        raise ExportError("the Edge TPU needs a full-int8 model (int8=True)")
    result = export_tflite(
        model_path_or_module,
        imgsz=imgsz,
        precision="int8",
        outputs="split",
        data=data,
        fraction=fraction,
        calib_indices=calib_indices,
        output=output,
        check_image=check_image,
        simplify=simplify,
        threads=threads,
        head=head,  # YOLO26: the one-to-one head without its top-k by default (the core selects, no NMS)
    )
    check = static_check(result.path)
    notes = [*list(result.notes), check.summary().splitlines()[0]]
    try:
        report = compile_model(result.path, compiler=compiler)
    except ExportError as exc:
        raise ExportError(f"{exc}\n(the int8 model was written to {result.path}; {notes[-1]})") from None
    notes.append(report.summary())
    result.notes = tuple(notes)
    if report.output is not None:
        result.path = report.output
    result.format = "edgetpu"
    return result
