"""Tiny ONNX models built with onnx.helper, for tests of model validation and of the pipeline.

The outputs are constants, so the results are known exactly: a "seg" model has one confident box
at a chosen place and prototypes that make its mask fill that box.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def save_model(
    path: Path,
    outputs: dict[str, np.ndarray],
    *,
    input_shape: Sequence = (1, 3, 64, 64),
    metadata: dict[str, str] | None = None,
    output_shapes: dict[str, list] | None = None,
) -> Path:
    """An ONNX model with one float input 'images' whose outputs are the given constant arrays.

    ``output_shapes`` overrides the declared output shapes (strings = dynamic dims).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, graph_outputs = [], []
    for name, value in outputs.items():
        const = numpy_helper.from_array(np.asarray(value, dtype=np.float32), name=f"{name}_value")
        nodes.append(helper.make_node("Constant", [], [name], value=const))
        shape = (output_shapes or {}).get(name, list(np.shape(value)))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph_input = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))
    graph = helper.make_graph(nodes, "synthetic", [graph_input], graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def seg_outputs(
    nc: int = 2,
    nm: int = 4,
    anchors: int = 84,
    proto_hw: int = 16,
    box=(32.0, 32.0, 20.0, 20.0),
    score: float = 0.9,
    class_id: int = 1,
):
    """output0 [1, 4+nc+nm, anchors] with one candidate at anchor 0 (cx, cy, w, h), output1 [1, nm, h, w].

    All prototypes are 1 and the coefficients 1, so the mask logit is nm everywhere: the mask fills the box.
    """
    preds = np.zeros((1, 4 + nc + nm, anchors), np.float32)
    preds[0, :4, 0] = box
    preds[0, 4 + class_id, 0] = score
    preds[0, 4 + nc :, 0] = 1.0
    protos = np.ones((1, nm, proto_hw, proto_hw), np.float32)
    return preds, protos


def seg_metadata(nc: int = 2, imgsz=(64, 64), task: str = "segment") -> dict[str, str]:
    names = {i: f"class{i}" for i in range(nc)}
    return {"task": task, "names": repr(names), "imgsz": repr(list(imgsz)), "stride": "32"}


def save_seg_model(
    path: Path,
    *,
    nc: int = 2,
    nm: int = 4,
    metadata: dict[str, str] | None = None,
    input_shape: Sequence = (1, 3, 64, 64),
    **outputs_kw,
) -> Path:
    preds, protos = seg_outputs(nc=nc, nm=nm, **outputs_kw)
    meta = seg_metadata(nc) if metadata is None else metadata
    return save_model(path, {"output0": preds, "output1": protos}, input_shape=input_shape, metadata=meta)
