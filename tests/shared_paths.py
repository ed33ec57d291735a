"""Where the read-only test data lives: the ``shared`` folder beside the repository (``../shared``).

One definition for every test module. Set ``EDGESEG_SHARED`` to use another folder. Test modules import
``SHARED`` from here (``from shared_paths import SHARED``) for module-level uses such as ``skipif`` marks;
test functions can take the ``shared`` fixture from conftest.py instead, which skips when the folder is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_ENV = "EDGESEG_SHARED"
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED = Path(os.environ[SHARED_ENV]) if os.environ.get(SHARED_ENV) else DEFAULT_SHARED
