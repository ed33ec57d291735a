"""Model-file fuzzing: mutants of real model files opened through edgeseg's public API, each in a worker
subprocess, for every format edgeseg opens.

    python tests/fuzz/model_files.py --seconds 240 [--formats onnx,openvino,...] [--artifacts DIR] [--seed N]

Seeds are real files: the built-in demo ONNX, Ultralytics' YOLO26 exports and TFLite model in ../shared, an
ncnn export made here, Ultralytics' ``.pt`` checkpoints (zip) and a legacy-pickle one made here, the
``metadata.yaml`` beside an export, a dataset yaml and a label file. Each mutant is one of: byte flips, a
truncation, an inserted or a deleted range, a size field in the header overwritten, and for text files a line
duplicated, deleted or a number replaced by an extreme one. The only allowed outcomes are a result or an
:class:`edgeseg.errors.EdgesegError`; a signal (crash), no answer in ``--timeout`` seconds (hang) or any other
exception (an uncaught traceback) is a finding: the mutant is kept under ``--artifacts`` with a line telling how
to replay it, and the exit status is 1. Formats whose packages are missing are skipped and reported as such.
Prints a table of mutants and outcomes per format, and a one-line summary last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("EDGESEG_SHARED") or ROOT.parent / "shared")
WORKER = Path(__file__).with_name("model_worker.py")
TEXT_SUFFIXES = {".xml", ".param", ".yaml", ".txt"}


@dataclass
class Seed:
    """A model (a file or a folder) and which of its files the mutants change."""

    name: str  # the format it stands for in the report
    kind: str  # the worker's call: model, metadata, dataset, labels
    path: Path  # what the worker opens (a file or a folder)
    targets: list[Path]  # files under `path` (or `path` itself) to mutate
    options: dict = field(default_factory=dict)
    folder: Path | None = None  # what is copied per mutant (defaults to path)


# ---- mutations --------------------------------------------------------------------------------------------

INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000]


def mutate(data: bytes, rng: random.Random, text: bool) -> tuple[bytes, str]:
    n = len(data)
    ops = ["flip", "truncate", "insert", "delete", "header"] + (["line-dup", "line-del", "number"] * 2 if text else [])
    op = rng.choice(ops)
    b = bytearray(data)
    if op == "flip" and n:
        k = rng.choice([1, 1, 2, 4, 8, 16])
        for _ in range(k):
            b[rng.randrange(n)] ^= rng.randrange(1, 256)
        return bytes(b), f"flip {k} bytes"
    if op == "truncate":
        cut = rng.randrange(n) if n else 0
        return bytes(b[:cut]), f"truncate to {cut} of {n} bytes"
    if op == "insert":
        at, k = rng.randrange(n + 1), rng.choice([1, 7, 64, 256, 4096])
        return bytes(b[:at] + bytes(rng.randrange(256) for _ in range(k)) + b[at:]), f"insert {k} bytes at {at}"
    if op == "delete" and n:
        at = rng.randrange(n)
        k = min(n - at, rng.choice([1, 3, 16, 256, 4096]))
        return bytes(b[:at] + b[at + k :]), f"delete {k} bytes at {at}"
    if op == "header" and n >= 8:
        width = rng.choice([4, 8])
        at = rng.randrange(min(n - width, 512) + 1) if rng.random() < 0.7 else rng.randrange(n - width + 1)
        value = rng.choice([*INTERESTING, n, 2 * n, rng.getrandbits(32)]) % (1 << (8 * width))
        b[at : at + width] = value.to_bytes(width, "little")
        return bytes(b), f"header: {width}-byte field at {at} = {value:#x}"
    if text:
        lines = data.split(b"\n")
        i = rng.randrange(len(lines))
        if op == "line-dup":
            lines.insert(i, lines[i])
            return b"\n".join(lines), f"line {i + 1} duplicated"
        if op == "line-del":
            del lines[i]
            return b"\n".join(lines), f"line {i + 1} deleted"
        numbers = list(re.finditer(rb"-?\d+(\.\d+)?", data))
        if numbers:
            m = rng.choice(numbers)
            new = rng.choice([b"0", b"-1", b"999999999999", b"-2147483648", b"4294967296", b"nan", b"1e308", b"-0"])
            return data[: m.start()] + new + data[m.end() :], f"number at {m.start()} -> {new.decode()}"
    return mutate(data, rng, False) if n else (b"\0", "empty -> one byte")


# ---- the worker -------------------------------------------------------------------------------------------


class Worker:
    """A long-lived worker process (imports once), restarted after a crash or a hang."""

    def __init__(self, timeout: float, log: Path):
        self.timeout = timeout
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.answers = None

    def start(self) -> None:
        r, w = os.pipe()
        env = dict(os.environ, PYTHONFAULTHANDLER="1", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER), str(w)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(w,),
                env=env,
                text=True,
                start_new_session=True,
            )
        os.close(w)
        self.answers = os.fdopen(r, "r")
        ready = self._read(120)
        if not ready or not ready.get("ready"):
            raise RuntimeError(f"the fuzz worker did not start (see {self.log})")

    def _read(self, timeout: float) -> dict | None:
        assert self.answers is not None
        ready, _, _ = select.select([self.answers], [], [], timeout)
        if not ready:
            return None
        line = self.answers.readline()
        return json.loads(line) if line else None

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        if self.answers is not None:
            self.answers.close()
            self.answers = None

    def run(self, seed: Seed, path: Path) -> dict:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        req = {"kind": seed.kind, "path": str(path), "options": seed.options}
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self._read(self.timeout)
        if answer is not None:
            return answer
        code = self.proc.poll()
        if code is None:
            self.stop()
            return {"outcome": "hang", "message": f"no answer in {self.timeout:.0f} s"}
        self.stop()
        sig = -code if code < 0 else None
        what = signal.Signals(sig).name if sig else f"exit status {code}"
        return {"outcome": "crash", "message": what}


# ---- seeds ------------------------------------------------------------------------------------------------


def _has(*modules: str) -> bool:
    return all(find_spec(m) is not None for m in modules)


def make_seeds(work: Path, wanted: set[str], notes: list[str]) -> list[Seed]:
    seeds: list[Seed] = []
    models = SHARED / "models"

    def want(name: str, *modules: str, needs: Path | None = None) -> bool:
        if name not in wanted:
            return False
        if not _has(*modules):
            notes.append(f"{name}: skipped, {' / '.join(modules)} not installed")
            return False
        if needs is not None and not needs.exists():
            notes.append(f"{name}: skipped, {needs} not found")
            return False
        return True

    if want("onnx", "onnxruntime"):
        seeds.append(Seed("onnx", "model", ROOT / "edgeseg/assets/demo-seg.onnx", []))
        if (models / "yolo26n-seg-shapes.onnx").exists():
            seeds.append(Seed("onnx", "model", models / "yolo26n-seg-shapes.onnx", []))
    ov = models / "yolo26n-seg-shapes_openvino_model"
    if want("openvino", "openvino", "yaml", needs=ov):
        seeds.append(Seed("openvino", "model", ov, sorted(p for p in ov.iterdir() if p.is_file())))
    tfl = models / "yolo11n-seg_full_integer_quant.tflite"
    if want("tflite", "ai_edge_litert", needs=tfl):
        seeds.append(Seed("tflite", "model", tfl, []))
    pt = models / "yolov8n-seg-rand.pt"
    if want("pt", "torch", needs=pt):
        seeds.append(Seed("pt", "model", pt, [], {"imgsz": 160}))
        if (models / "yolo26n-seg-shapes.pt").exists():
            seeds.append(Seed("pt", "model", models / "yolo26n-seg-shapes.pt", [], {"imgsz": 160}))
        legacy = work / "seeds" / "legacy-state-dict.pt"
        if not legacy.exists():
            import torch

            from edgeseg.nn.load import load_model

            model, _ = load_model(pt)
            legacy.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), legacy, _use_new_zipfile_serialization=False)
        seeds.append(Seed("pt-legacy", "model", legacy, [], {"imgsz": 160}))
    if want("ncnn", "ncnn", "pnnx", "torch", needs=pt):
        folder = work / "seeds" / "rand_ncnn_model"
        if not folder.exists():
            from edgeseg.exporters import export

            export(str(pt), format="ncnn", imgsz=160, output=str(folder))
        seeds.append(Seed("ncnn", "model", folder, sorted(p for p in folder.iterdir() if p.is_file())))
    if want("metadata", "yaml", needs=ov / "metadata.yaml"):
        seeds.append(Seed("metadata", "metadata", ov / "metadata.yaml", []))
        tmeta = models / "yolo11n-seg_full_integer_quant_metadata.yaml"
        if tmeta.exists():
            seeds.append(Seed("metadata", "metadata", tmeta, []))
    shapes = SHARED / "data" / "shapes-seg"
    if want("dataset", "yaml", "cv2", needs=shapes):
        ds = work / "seeds" / "dataset"
        if not ds.exists():
            for split in ("train", "val"):
                (ds / "images" / split).mkdir(parents=True)
                (ds / "labels" / split).mkdir(parents=True)
                for img in sorted((shapes / "images" / split).iterdir())[:2]:
                    shutil.copy(img, ds / "images" / split / img.name)
                    lab = shapes / "labels" / split / (img.stem + ".txt")
                    if lab.exists():
                        shutil.copy(lab, ds / "labels" / split / lab.name)
            (ds / "data.yaml").write_text(
                "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: circle\n  1: square\n"
                "  2: triangle\n  3: star\n"
            )
        seeds.append(Seed("dataset", "dataset", ds, [ds / "data.yaml"]))
        img = sorted((ds / "images" / "train").iterdir())[0]
        label = ds / "labels" / "train" / (img.stem + ".txt")
        seeds.append(Seed("labels", "labels", ds, [label], {"image": str(img), "nc": 4}))
    return seeds


# ---- the campaign -----------------------------------------------------------------------------------------


@dataclass
class Tally:
    mutants: int = 0
    outcomes: dict = field(default_factory=lambda: {"result": 0, "error": 0, "crash": 0, "hang": 0, "uncaught": 0})
    errors: dict = field(default_factory=dict)  # error type -> count


def mutant_of(seed: Seed, scratch: Path, rng: random.Random) -> tuple[Path, str]:
    """A copy of the seed with one file mutated; returns (what to open, description)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    src = seed.path
    if src.is_dir():
        dst = scratch / src.name
        shutil.copytree(src, dst)
        targets = [dst / t.relative_to(src) for t in seed.targets]
    else:
        dst = scratch / src.name
        shutil.copy(src, dst)
        targets = [dst]
    target = rng.choice(targets)
    data, what = mutate(target.read_bytes(), rng, target.suffix.lower() in TEXT_SUFFIXES)
    target.write_bytes(data)
    opened = dst
    if seed.kind == "dataset":
        opened = dst / "data.yaml"
    options_image = seed.options.get("image")
    if seed.kind == "labels" and options_image:
        seed_opts = dict(seed.options, image=str(dst / Path(options_image).relative_to(src)))
        return opened, json.dumps(seed_opts) + "|" + f"{target.relative_to(scratch)}: {what}"
    return opened, f"{target.relative_to(scratch)}: {what}"


def main(argv: list[str] | None = None) -> int:
    all_formats = ["onnx", "openvino", "ncnn", "tflite", "pt", "pt-legacy", "metadata", "dataset", "labels"]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=240.0, help="total time for all formats (split evenly)")
    p.add_argument("--formats", default=",".join(all_formats))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without an answer that count as a hang")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--artifacts", type=Path, default=None, help="where findings are kept (default: a temp dir)")
    p.add_argument("--work", type=Path, default=None, help="seed cache (ncnn export, legacy .pt)")
    a = p.parse_args(argv)
    wanted = set(a.formats.split(","))
    unknown = wanted - set(all_formats)
    if unknown:
        p.error(f"unknown formats {sorted(unknown)}; choose from {all_formats}")
    work = a.work or Path(tempfile.mkdtemp(prefix="edgeseg-fuzz-"))
    artifacts = a.artifacts or work / "findings"
    artifacts.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    seeds = make_seeds(work, wanted, notes)
    names = sorted({s.name for s in seeds}, key=all_formats.index)
    tallies = {n: Tally() for n in names}
    rng = random.Random(a.seed)
    scratch_root = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else work
    scratch = Path(tempfile.mkdtemp(prefix="mutant-", dir=scratch_root))
    worker = Worker(a.timeout, work / "worker.log")
    findings = 0
    per_format = a.seconds / max(1, len(names))
    try:
        for name in names:
            mine = [s for s in seeds if s.name == name]
            t = tallies[name]
            end = time.monotonic() + per_format
            while time.monotonic() < end:
                seed = rng.choice(mine)
                opened, what = mutant_of(seed, scratch / "m", rng)
                run_seed = seed
                if "|" in what and seed.kind == "labels":
                    opts, what = what.split("|", 1)
                    run_seed = Seed(seed.name, seed.kind, seed.path, seed.targets, json.loads(opts))
                answer = worker.run(run_seed, opened)
                t.mutants += 1
                outcome = answer["outcome"]
                t.outcomes[outcome] += 1
                if outcome == "error":
                    t.errors[answer["type"]] = t.errors.get(answer["type"], 0) + 1
                if outcome in ("crash", "hang", "uncaught"):
                    findings += 1
                    keep = artifacts / f"{name}-{t.mutants:05d}-{outcome}"
                    shutil.copytree(scratch / "m", keep)
                    (keep / "FINDING.txt").write_text(
                        f"{outcome}: {answer.get('type', '')} {answer.get('message', '')}\nmutation: {what}\n"
                        f"replay: echo '{json.dumps({'kind': run_seed.kind, 'path': str(opened), 'options': run_seed.options})}'"
                        f" | python {WORKER} 1\n\n{answer.get('traceback', '')}"
                    )
                    print(
                        f"FINDING {name} #{t.mutants} {outcome}: {answer.get('type', '')} "
                        f"{answer.get('message', '')[:160]} ({what}) -> {keep}",
                        flush=True,
                    )
    finally:
        worker.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"{'format':<10} {'mutants':>8} {'results':>8} {'errors':>7} {'crashes':>8} {'hangs':>6} {'uncaught':>9}  error types"
    )
    for name in names:
        t = tallies[name]
        o = t.outcomes
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(t.errors.items(), key=lambda kv: -kv[1]))
        print(
            f"{name:<10} {t.mutants:>8} {o['result']:>8} {o['error']:>7} {o['crash']:>8} {o['hang']:>6} {o['uncaught']:>9}  {kinds}"
        )
    for note in notes:
        print(note)
    total = sum(t.mutants for t in tallies.values())
    crashes = sum(t.outcomes["crash"] for t in tallies.values())
    hangs = sum(t.outcomes["hang"] for t in tallies.values())
    uncaught = sum(t.outcomes["uncaught"] for t in tallies.values())
    per = ", ".join(f"{n} {tallies[n].mutants}" for n in names)
    print(
        f"model-file fuzz: {total} mutants ({per}); crashes {crashes}, hangs {hangs}, uncaught {uncaught}"
        + (f"; findings in {artifacts}" if findings else "")
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
