"""Entry point of one DDP worker process: ``python -m torch.distributed.run ... -m edgeseg.train.run_ddp --cfg F``.

``F`` is a JSON file with the training options (written by :func:`edgeseg.train.ddp.launch`).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="edgeseg.train.run_ddp")
    parser.add_argument("--cfg", required=True, help="JSON file with the training options")
    args = parser.parse_args(argv)
    with open(args.cfg, encoding="utf-8") as fh:
        cfg = json.load(fh)
    from edgeseg.train.trainer import Trainer

    Trainer(cfg).train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
