"""Validation: COCO-style box and mask mAP with Ultralytics' ``yolo val`` protocol.

``validate(model, data)`` runs a torch checkpoint (``.pt``), an in-memory torch model or any exported
model an edgeseg backend runs (``.onnx``) over a dataset split and returns a :class:`ValResult`.
Importing this package does not import torch.
"""

from .validator import ValResult, validate

__all__ = ["ValResult", "validate"]
