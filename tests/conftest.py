"""Test-wide fixtures. The shared test-data folder is defined once, in shared_paths.py."""

from __future__ import annotations

import os
from pathlib import Path

# oneDNN picks its convolution kernels by the CPU's instruction set, and its AVX-512 kernels sum in another order
# than its AVX2 ones: on the YOLO26 random checkpoint in train mode (BatchNorm on batch statistics) that moves raw
# outputs by up to 5e-4, against 2e-5 with the AVX2 kernels that the reference fixtures in ../shared were made
# with. Tests compare against those fixtures at 1e-4, so every machine runs the AVX2 kernels (set before torch is
# imported; a caller's own setting wins; no effect on a CPU without AVX-512).
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")

import pytest

from shared_paths import SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared test-data folder (``../shared``, or ``$EDGESEG_SHARED``); skips the test when it is missing."""
    if not SHARED.is_dir():
        pytest.skip("../shared (test data) is not available")
    return SHARED
