"""Test-wide fixtures. The shared test-data folder is defined once, in shared_paths.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_paths import SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared test-data folder (``../shared``, or ``$EDGESEG_SHARED``); skips the test when it is missing."""
    if not SHARED.is_dir():
        pytest.skip("../shared (test data) is not available")
    return SHARED
