"""DDP training on the CPU: 2 processes under torchrun with the Gloo backend, tiny model and dataset.

Checks that both ranks take the same number of optimiser steps, that the parameters are identical on
both ranks after every step, and that only rank 0 writes checkpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")
cv2 = pytest.importorskip("cv2")
import torch.distributed as dist  # noqa: E402

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with Gloo is not available"
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import make_dataset  # noqa: E402

WORKER = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    from edgeseg.train.trainer import Trainer

    options, out_dir = json.loads(sys.argv[1]), sys.argv[2]
    checks = []

    def checksum(trainer):
        h = hashlib.sha256()
        for p in trainer.model.parameters():
            h.update(p.detach().cpu().numpy().tobytes())
        return h.hexdigest()

    def after_batch(trainer):
        sums = [None] * dist.get_world_size()
        dist.all_gather_object(sums, (trainer.optimizer_steps, checksum(trainer)))
        checks.append(sums)

    def at_end(trainer):
        report = {"rank": dist.get_rank(), "world": dist.get_world_size(), "steps": trainer.optimizer_steps,
                  "batches": trainer.batches_seen, "saved": [str(p) for p in trainer.saved],
                  "checks": checks, "backend": dist.get_backend(), "loader_batches": len(trainer.loader),
                  "sampler": type(trainer.loader.sampler).__name__}
        with open(os.path.join(out_dir, f"rank{dist.get_rank()}.json"), "w") as fh:
            json.dump(report, fh)

    trainer = Trainer(options)
    trainer.add_callback("on_batch_end", after_batch)
    trainer.add_callback("on_train_end", at_end)
    trainer.train()
""")


def test_two_process_cpu_ddp(tmp_path):
    data = make_dataset(tmp_path / "ds", n=4)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    options = {
        "model": "yolov8n-seg",
        "data": str(data),
        "epochs": 1,
        "imgsz": 64,
        "batch": 4,
        "workers": 0,
        "device": "cpu",
        "project": str(tmp_path / "runs"),
        "name": "ddp",
        "verbose": False,
        "plots": False,
        "warmup_epochs": 0,
    }
    from edgeseg.train.ddp import free_port

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(script),
        json.dumps(options),
        str(tmp_path),
    ]
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[1])]
            + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        ),
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in reports] == [0, 1] and all(r["world"] == 2 for r in reports)
    assert all(r["backend"] == "gloo" and r["sampler"] == "DistributedSampler" for r in reports)
    # 4 images, batch 4 over 2 ranks: 2 images per rank per step -> 1 batch each
    assert reports[0]["loader_batches"] == reports[1]["loader_batches"] == 1
    assert reports[0]["steps"] == reports[1]["steps"] >= 1
    assert reports[0]["batches"] == reports[1]["batches"]
    assert reports[0]["checks"] == reports[1]["checks"] and reports[0]["checks"]
    for step_views in reports[0]["checks"]:
        (steps0, sum0), (steps1, sum1) = step_views
        assert steps0 == steps1 and sum0 == sum1, "parameters differ between ranks"
    # only rank 0 writes checkpoints (and results)
    run = tmp_path / "runs" / "ddp"
    assert reports[1]["saved"] == []
    assert sorted(Path(p).name for p in reports[0]["saved"]) == ["best.pt", "last.pt"]
    assert (run / "weights" / "last.pt").is_file() and (run / "results.csv").is_file()
    from edgeseg.nn.checkpoint import load_checkpoint

    assert load_checkpoint(run / "weights" / "last.pt")["epoch"] == 0


def test_launch_command_and_device_parsing(tmp_path):
    from edgeseg.train import ddp

    cmd = ddp.launch_command(tmp_path / "cfg.json", 2, port=29555)
    assert cmd[:4] == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node"]
    assert cmd[4] == "2" and "edgeseg.train.run_ddp" in cmd and cmd[-1] == str(tmp_path / "cfg.json")
    assert ddp.parse_device("0,1") == ("cuda", [0, 1]) and ddp.parse_device("cpu") == ("cpu", [])
    assert ddp.device_count("0,1") == 2 and ddp.device_count("cpu") == 1
    if not torch.cuda.is_available():
        from edgeseg.train.trainer import Trainer

        with pytest.raises(ValueError, match="CUDA is not available"):
            Trainer(model="yolov8n-seg", data="x.yaml", device="0,1").train()
