"""Reading a .tflite graph: the flatbuffer schema and operator names (shared by the Edge TPU static check
and the SiLU range pass)."""

from __future__ import annotations

from typing import Any

from .common import ExportError

__all__ = ["enum_names", "op_names", "tflite_schema"]


def tflite_schema() -> Any:
    """The generated flatbuffer schema module of TFLite (from LiteRT, else TensorFlow, else tflite)."""
    for module in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated", "tflite"):
        try:
            return __import__(module, fromlist=["ModelT"])
        except ImportError:
            continue
    raise ExportError("reading a .tflite graph needs the TFLite schema: pip install 'edgeseg[tflite]' (ai-edge-litert)")


def enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def op_names(schema, model) -> list[str]:
    """Builtin operator name of each entry of the model's operator-code table (``OP_<n>`` if unknown)."""
    by_code = enum_names(schema.BuiltinOperator)
    names = []
    for code in model.operatorCodes or []:
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        names.append(by_code.get(builtin, f"OP_{builtin}"))
    return names
