"""``python -m edgeseg`` -- same as the ``edgeseg`` command."""

import sys

from edgeseg.cli import main

if __name__ == "__main__":
    sys.exit(main())
