"""Training throughput: images per second of the edgeseg trainer's training step.

Each timed iteration is what the trainer does per batch: load + augment a batch (mosaic etc.), forward,
loss, backward, and (every ``accumulate`` batches, 4 at batch 16) gradient clipping, optimizer step and
EMA update. The first ``--warmup`` iterations are not timed; the median over ``--iters`` is reported.

    python benchmarks/train_speed.py [--data coco128-seg.yaml] [--model yolov8n-seg] [--imgsz 320]
                                     [--batch 16] [--device cpu] [--iters 10] [--warmup 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "coco128-seg" / "coco128-seg.yaml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="dataset yaml (default coco128-seg)")
    parser.add_argument("--model", default="yolov8n-seg", help="model name or weights (default yolov8n-seg)")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--iters", type=int, default=10, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)

    import torch

    from edgeseg.train.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.data).is_file():
        print(f"dataset yaml not found: {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(
            model=args.model,
            data=args.data,
            imgsz=args.imgsz,
            batch=args.batch,
            device=args.device,
            workers=args.workers,
            epochs=100,
            project=tmp,
            verbose=False,
            plots=False,
        )
        trainer.dist = __import__("edgeseg.train.ddp", fromlist=["setup"]).setup(args.device)
        trainer._setup()
        loader, model, criterion = trainer.loader, trainer.train_model, trainer.criterion
        model.train()
        times = []
        pending = 0
        total = args.warmup + args.iters
        done = 0
        epoch = 0
        while done < total:
            trainer._reseed_data(epoch)
            it = iter(loader)
            while done < total:
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                batch = trainer._preprocess(batch)
                preds = model(batch["img"])
                loss, _ = criterion(preds, batch)
                loss.backward()
                pending += 1
                if pending >= trainer.accumulate:
                    trainer._optimizer_step()
                    pending = 0
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                if done >= args.warmup:
                    times.append((dt, int(batch["img"].shape[0])))
                done += 1
            epoch += 1
    rates = [n / dt for dt, n in times]
    med = statistics.median(rates)
    print(
        f"model {args.model}, imgsz {args.imgsz}, batch {args.batch}, device {args.device}, "
        f"torch threads {torch.get_num_threads()}, accumulate {trainer.accumulate}"
    )
    print(
        f"iteration time: median {statistics.median(dt for dt, _ in times) * 1e3:.0f} ms, "
        f"min {min(dt for dt, _ in times) * 1e3:.0f} ms, max {max(dt for dt, _ in times) * 1e3:.0f} ms "
        f"over {len(times)} iterations"
    )
    print(f"training throughput: {med:.2f} img/s (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
