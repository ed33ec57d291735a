"""Edge TPU: static check of .tflite graphs (built here with the TFLite schema, no TensorFlow), the
compiler's error path without a compiler, and the compiler-log parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
import flatbuffers  # noqa: E402  (a dependency of ai-edge-litert)

from edgeseg.exporters.common import ExportError  # noqa: E402
from edgeseg.exporters.edgetpu import compile_model, parse_compiler_log, static_check  # noqa: E402

OP = schema.BuiltinOperator
TT = schema.TensorType


def _tensor(name, shape, ttype=TT.INT8, buffer=0, quant=True, signature=None):
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), ttype, buffer
    if signature is not None:
        t.shapeSignature = list(signature)
    if quant:
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [0.05], [0]
        t.quantization = q
    return t


def build_model(path: Path, ops, tensors, const_buffers=()):
    """ops: [(builtin, inputs, outputs, options_type, options)]; const tensors use buffers 1..n."""
    model = schema.ModelT()
    model.version = 3
    codes, index = [], {}
    for op in ops:
        if op[0] not in index:
            code = schema.OperatorCodeT()
            code.builtinCode = op[0]
            code.deprecatedBuiltinCode = min(op[0], 127)
            code.version = 1
            index[op[0]] = len(codes)
            codes.append(code)
    model.operatorCodes = codes
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs, graph.outputs = [0], [len(tensors) - 1]
    graph.operators = []
    for builtin, ins, outs, opt_type, options in ops:
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = index[builtin], list(ins), list(outs)
        if options is not None:
            o.builtinOptionsType, o.builtinOptions = opt_type, options
        graph.operators.append(o)
    model.subgraphs = [graph]
    buffers = [schema.BufferT()]
    for data in const_buffers:
        b = schema.BufferT()
        b.data = np.frombuffer(bytes(data), dtype=np.uint8).tolist()
        buffers.append(b)
    model.buffers = buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def conv_net(tmp_path, middle=OP.LOGISTIC, float_io=False, dynamic=False, concat_act=None):
    """input -> CONV_2D -> <middle> -> CONV_2D -> output, int8 unless float_io."""
    tt = TT.FLOAT32 if float_io else TT.INT8
    sig = [1, -1, -1, 3] if dynamic else None
    tensors = [
        _tensor("input", [1, 8, 8, 3], tt, quant=not float_io, signature=sig),
        _tensor("w1", [4, 3, 3, 3], TT.INT8, buffer=1),
        _tensor("b1", [4], TT.INT32, buffer=2),
        _tensor("a1", [1, 8, 8, 4]),
        _tensor("a2", [1, 8, 8, 4]),
        _tensor("w2", [4, 1, 1, 4], TT.INT8, buffer=3),
        _tensor("b2", [4], TT.INT32, buffer=4),
        _tensor("output", [1, 8, 8, 4]),
    ]
    conv = schema.Conv2DOptionsT()
    conv.strideW = conv.strideH = conv.dilationWFactor = conv.dilationHFactor = 1
    if middle == OP.CONCATENATION:
        mid_opts = schema.ConcatenationOptionsT()
        mid_opts.axis = 3
        mid_opts.fusedActivationFunction = concat_act or schema.ActivationFunctionType.NONE
        mid = (OP.CONCATENATION, [3], [4], schema.BuiltinOptions.ConcatenationOptions, mid_opts)
    else:
        mid = (middle, [3], [4], None, None)
    ops = [
        (OP.CONV_2D, [0, 1, 2], [3], schema.BuiltinOptions.Conv2DOptions, conv),
        mid,
        (OP.CONV_2D, [4, 5, 6], [7], schema.BuiltinOptions.Conv2DOptions, conv),
    ]
    consts = [b"\x01" * 108, b"\x00" * 16, b"\x01" * 16, b"\x00" * 16]
    return build_model(tmp_path / "net.tflite", ops, tensors, consts)


def test_fully_int8_graph_maps_completely(tmp_path):
    check = static_check(conv_net(tmp_path))
    assert check.n_ops == 3 and check.n_mappable == 3 and check.share_mappable == 1.0
    assert check.subgraphs == 1 and check.first_unsupported is None
    assert "3/3 ops (100.0%)" in check.summary()


def test_first_unsupported_op_stops_the_subgraph(tmp_path):
    check = static_check(conv_net(tmp_path, middle=OP.GATHER))
    assert check.n_mappable == 1 and check.n_supported == 2
    first = check.first_unsupported
    assert (first.index, first.op) == (1, "GATHER") and "supported operations" in first.reason
    assert "first op that cannot map: #1 GATHER" in check.summary()


def test_float_tensors_do_not_map(tmp_path):
    check = static_check(conv_net(tmp_path, float_io=True))
    assert check.n_mappable == 0
    assert "FLOAT32" in check.first_unsupported.reason


def test_dynamic_shapes_do_not_map(tmp_path):
    check = static_check(conv_net(tmp_path, dynamic=True))
    assert check.n_mappable == 0 and "dynamic shape" in check.first_unsupported.reason


def test_op_limits_are_checked(tmp_path):
    check = static_check(conv_net(tmp_path, middle=OP.CONCATENATION, concat_act=schema.ActivationFunctionType.RELU))
    assert check.first_unsupported.index == 1 and "fused activation" in check.first_unsupported.reason


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ExportError, match="TFL3"):
        static_check(bad)
    with pytest.raises(FileNotFoundError):
        static_check(tmp_path / "missing.tflite")


def test_ultralytics_full_int8_file(shared):
    path = shared / "models" / "yolo11n-seg_full_integer_quant.tflite"
    if not path.is_file():
        pytest.skip("shared models not available")
    check = static_check(path)
    assert check.n_ops > 400 and 0 < check.n_mappable < check.n_ops  # its decode does not map


def test_compiler_missing_gives_install_instructions(tmp_path, monkeypatch):
    model = conv_net(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no edgetpu_compiler on PATH
    with pytest.raises(ExportError, match="apt-get install edgetpu-compiler"):
        compile_model(model)
    with pytest.raises(ExportError, match="edgetpu_compiler is not installed"):
        compile_model(model, compiler=str(tmp_path / "nowhere" / "edgetpu_compiler"))


def test_compiler_failure_is_reported(tmp_path):
    model = conv_net(tmp_path)
    fake = tmp_path / "edgetpu_compiler"
    fake.write_text("#!/bin/sh\necho 'ERROR: Did not find op for builtin opcode' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ExportError, match="exit 1.*Did not find op"):
        compile_model(model, compiler=str(fake))


LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 3120 ms.

Input model: yolov8n-seg_int8_split.tflite
Input size: 3.55MiB
Output model: out/yolov8n-seg_int8_split_edgetpu.tflite
Output size: 3.81MiB
On-chip memory used for caching model parameters: 3.36MiB
On-chip memory remaining for caching model parameters: 4.10MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 230
Operation log: out/yolov8n-seg_int8_split_edgetpu.log

Operator                       Count      Status

CONV_2D                        76         Mapped to Edge TPU
LOGISTIC                       67         Mapped to Edge TPU
TRANSPOSE_CONV                 1          Mapped to Edge TPU
RESIZE_NEAREST_NEIGHBOR        2          Operation is otherwise supported, but not mapped due to some unspecified limitation
Number of operations that will run on Edge TPU: 228
Number of operations that will run on CPU: 2
"""


def test_compiler_log_is_parsed(tmp_path):
    report = parse_compiler_log(LOG)
    assert report.version == "16.0.384591198"
    assert (report.ops_on_tpu, report.ops_on_cpu, report.total_ops, report.subgraphs) == (228, 2, 230, 1)
    assert report.on_chip_memory == "3.36MiB" and report.off_chip_memory == "0.00B"
    assert report.output == Path("out/yolov8n-seg_int8_split_edgetpu.tflite")
    assert ("CONV_2D", 76, "Mapped to Edge TPU") in report.per_op
    assert report.per_op[-1][0] == "RESIZE_NEAREST_NEIGHBOR" and "not mapped" in report.per_op[-1][2]
    # a fake compiler that prints this log: the full path through compile_model
    fake = tmp_path / "edgetpu_compiler"
    (tmp_path / "log.txt").write_text(LOG)
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'log.txt'}\n")
    fake.chmod(0o755)
    got = compile_model(conv_net(tmp_path), compiler=str(fake))
    assert got.ops_on_tpu == 228 and got.subgraphs == 1
