"""The trainer on a tiny synthetic dataset: end to end, exact resume, atomic checkpoints, options and errors.

Kept small for CI (2 CPU cores): four 64x64 images with two filled shapes each, yolov8n-seg at imgsz 64,
batch 2, 3 epochs.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")
cv2 = pytest.importorskip("cv2")

from edgeseg.train.config import TrainConfig  # noqa: E402
from edgeseg.train.ema import ModelEMA  # noqa: E402
from edgeseg.train.optim import (  # noqa: E402
    accumulate_steps,
    build_optimizer,
    choose_optimizer,
    nominal_iterations,
    param_groups,
    scaled_weight_decay,
)
from edgeseg.train.schedule import apply_warmup, lr_lambda, warmup_iterations  # noqa: E402
from edgeseg.train.trainer import Trainer, transfer_weights  # noqa: E402
from shared_paths import SHARED  # noqa: E402

ULTRA_RAND = SHARED / "models" / "yolov8n-seg-rand.pt"
LOSSES = ("train/box_loss", "train/seg_loss", "train/cls_loss", "train/dfl_loss")


def make_dataset(root: Path, n: int = 4, size: int = 64, seed: int = 0, names=("box", "tri")) -> Path:
    """n images with two filled shapes each (class 0 rectangles, class 1 triangles) and polygon labels."""
    rng = np.random.default_rng(seed)
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size, size, 3), 40, np.uint8)
        rows = []
        for k in range(2):
            c = k % 2
            x0, y0 = (int(v) for v in rng.integers(2, size // 2, 2))
            w, h = (int(v) for v in rng.integers(14, size // 2, 2))
            x1, y1 = min(x0 + w, size - 2), min(y0 + h, size - 2)
            if c == 0:
                pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
            else:
                pts = np.array([[(x0 + x1) / 2, y0], [x1, y1], [x0, y1]], np.float32)
            cv2.fillPoly(img, [pts.astype(np.int32)], (200, 80, 30) if c == 0 else (30, 200, 90))
            rows.append(f"{c} " + " ".join(f"{v / size:.5f}" for v in pts.reshape(-1)))
        cv2.imwrite(str(images / f"im{i}.png"), img)
        (labels / f"im{i}.txt").write_text("\n".join(rows) + "\n")
    names_yaml = "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    yaml_file = root / "data.yaml"
    yaml_file.write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames:\n{names_yaml}")
    return yaml_file


def base_options(data: Path, project: Path, **extra) -> dict:
    opts = {
        "model": "yolov8n-seg",
        "data": str(data),
        "epochs": 3,
        "imgsz": 64,
        "batch": 2,
        "workers": 0,
        "seed": 0,
        "deterministic": True,
        "project": str(project),
        "exist_ok": True,
        "verbose": False,
        "val": False,
        "plots": False,
    }
    opts.update(extra)
    return opts


def read_csv(path: Path) -> list:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def full_run(data_yaml, tmp_path_factory):
    """An uninterrupted 3-epoch run (plots on): the reference for the resume test too."""
    project = tmp_path_factory.mktemp("runs")
    trainer = Trainer(base_options(data_yaml, project, name="full", plots=True))
    return trainer, trainer.train()


# -- end to end --------------------------------------------------------------------------------------------


def test_training_writes_weights_results_and_plots(full_run):
    trainer, result = full_run
    run = result.save_dir
    for name in (
        "weights/last.pt",
        "weights/best.pt",
        "results.csv",
        "args.yaml",
        "results.png",
        "PR_curve.png",
        "val_predictions.png",
    ):
        assert (run / name).is_file(), name
        assert (run / name).stat().st_size > 0
    for png in ("results.png", "PR_curve.png", "val_predictions.png"):
        assert cv2.imread(str(run / png)) is not None
    assert not list((run / "weights").glob(".*tmp")), "temporary checkpoint files left behind"
    rows = read_csv(run / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for key in (*LOSSES, "lr/pg0", "lr/pg1", "lr/pg2", "metrics/mAP50-95(M)", "metrics/mAP50-95(B)"):
        assert key in rows[0], key
    assert result.epochs_run == 3 and result.start_epoch == 0
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    for h in result.history:
        assert all(math.isfinite(h[k]) and h[k] >= 0 for k in LOSSES), h
    total = [sum(h[k] for k in LOSSES) for h in result.history]
    assert min(total[1:]) < total[0], f"the loss never fell below the first epoch's: {total}"
    assert result.metrics and 0.0 <= result.metrics["metrics/mAP50-95(M)"] <= 1.0  # final epoch validated
    assert trainer.optimizer_steps >= 3


def test_checkpoints_are_loadable_and_hold_training_state(full_run):
    from edgeseg.nn.checkpoint import load_checkpoint
    from edgeseg.nn.load import load_model

    _, result = full_run
    last = load_checkpoint(result.last)
    assert last["epoch"] == 2 and last["nc"] == 2 and last["names"] == {0: "box", 1: "tri"}
    for key in ("optimizer", "updates", "best_fitness", "rng_state", "train_state_dict", "scheduler", "train_args"):
        assert key in last, key
    assert last["train_args"]["epochs"] == 3 and last["train_args"]["imgsz"] == 64
    assert last["updates"] >= 3
    assert all(v.dtype != torch.float16 for v in last["state_dict"].values())
    best = load_checkpoint(result.best)
    assert "optimizer" not in best and "train_state_dict" not in best  # deployment weights only
    model, info = load_model(result.best)
    assert info.format == "edgeseg" and model.nc == 2
    with torch.no_grad():
        y, _protos = model(torch.zeros(1, 3, 64, 64))
    assert y.shape[1] == 4 + 2 + 32


# -- resume ------------------------------------------------------------------------------------------------


def test_resume_after_interrupt_continues_exactly(full_run, data_yaml, tmp_path):
    _, reference = full_run
    interrupted = Trainer(base_options(data_yaml, tmp_path, name="cut"))

    def stop_in_epoch_2(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    interrupted.add_callback("on_batch_end", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    last = tmp_path / "cut" / "weights" / "last.pt"
    from edgeseg.nn.checkpoint import load_checkpoint

    assert load_checkpoint(last)["epoch"] == 0  # the interrupted epoch left last.pt as it was
    assert len(read_csv(tmp_path / "cut" / "results.csv")) == 1

    resumed = Trainer(resume=str(last)).train()
    assert resumed.start_epoch == 1 and resumed.epochs_run == 2
    assert resumed.save_dir == (tmp_path / "cut").resolve()
    assert [h["epoch"] for h in resumed.history] == [2, 3]
    for ref, got in zip(reference.history[1:], resumed.history):
        for key in (*LOSSES, "lr/pg0", "lr/pg1", "lr/pg2"):
            assert got[key] == ref[key], (key, ref["epoch"], ref[key], got[key])
    assert [int(r["epoch"]) for r in read_csv(tmp_path / "cut" / "results.csv")] == [1, 2, 3]
    a, b = load_checkpoint(reference.last), load_checkpoint(last)
    assert a["updates"] == b["updates"]
    for key in ("state_dict", "train_state_dict"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    with pytest.raises(ValueError, match="already finished"):
        Trainer(resume=str(last)).train()


def test_resume_rejects_non_training_checkpoints(full_run):
    _, result = full_run
    with pytest.raises(ValueError, match="no training state"):
        Trainer(resume=str(result.best)).train()
    with pytest.raises(FileNotFoundError):
        Trainer(resume=str(result.save_dir / "nope.pt")).train()


# -- atomic checkpoint writes ---------------------------------------------------------------------------------


def test_interrupted_checkpoint_write_keeps_the_old_file(full_run, monkeypatch):
    from edgeseg.nn.checkpoint import load_checkpoint

    trainer, result = full_run
    before = hashlib.sha256(result.last.read_bytes()).hexdigest()

    def broken_save(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        trainer._write(result.last, {"anything": 1})
    monkeypatch.undo()
    assert hashlib.sha256(result.last.read_bytes()).hexdigest() == before
    assert load_checkpoint(result.last)["epoch"] == 2
    assert not [p for p in result.last.parent.iterdir() if p.name.endswith(".tmp")]


# -- starting weights ---------------------------------------------------------------------------------------


def test_start_from_checkpoint_with_other_nc_transfers_matching_layers(tmp_path):
    from edgeseg.nn import build_model
    from edgeseg.nn.checkpoint import save_checkpoint

    src = build_model("yolov8n-seg", nc=5)
    ckpt = save_checkpoint(tmp_path / "five.pt", src)
    trainer = Trainer(model=str(ckpt), data="unused.yaml")
    model = trainer._model_from_weights(ckpt, 2, {0: "a", 1: "b"})
    assert model.nc == 2 and model.names == {0: "a", 1: "b"}
    done, total = trainer.transferred
    assert 0 < done < total and total - done == 6  # the 3 class-output convs (weight + bias) are new
    same = src.state_dict()["model.0.conv.weight"]
    assert torch.equal(model.state_dict()["model.0.conv.weight"], same)
    # same nc: everything transferred, dataset names used
    model2 = trainer._model_from_weights(ckpt, 5, {i: f"c{i}" for i in range(5)})
    assert trainer.transferred[0] == trainer.transferred[1] and model2.names[4] == "c4"


def test_folded_batchnorm_weights_train_with_frozen_statistics(data_yaml, tmp_path):
    """Weights whose BN was folded into the convs (identity BN with biases) keep BN in eval mode, also on
    resume: batch statistics would change what the network computes."""
    from edgeseg.nn import build_model
    from edgeseg.nn.checkpoint import save_checkpoint

    src = build_model("yolov8n-seg", nc=2)
    with torch.no_grad():
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.weight.fill_(1.0)
                m.bias.uniform_(-0.5, 0.5)
    ckpt = save_checkpoint(tmp_path / "folded.pt", src)
    trainer = Trainer(base_options(data_yaml, tmp_path / "runs", model=str(ckpt), name="folded", epochs=1, nbs=2))
    trainer.train()
    assert trainer.freeze_bn
    bns = [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(float(m.running_mean.abs().max()) == 0.0 for m in bns)  # statistics untouched
    assert any(float((m.weight.detach() - 1).abs().max()) > 0 for m in bns)  # affine parameters trained
    # an ordinary start (random init) trains BN as usual
    plain = Trainer(base_options(data_yaml, tmp_path / "runs", name="plain", epochs=1, nbs=2))
    plain.train()
    assert not plain.freeze_bn
    assert any(
        float(m.running_mean.abs().max()) > 0 for m in plain.model.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )


@pytest.mark.skipif(not ULTRA_RAND.exists(), reason="shared Ultralytics checkpoint not available")
def test_start_from_ultralytics_pt(tmp_path):
    trainer = Trainer(model=str(ULTRA_RAND), data="unused.yaml")
    model = trainer._model_from_weights(ULTRA_RAND, 2, {0: "a", 1: "b"})
    assert model.nc == 2
    # the 80-class head's class branch is wider (c3 = max(64, min(nc, 100))): Ultralytics too reports 381/417
    assert trainer.transferred == (381, 417)


def test_transfer_weights_counts():
    from edgeseg.nn import build_model

    a, b = build_model("yolov8n-seg", nc=3), build_model("yolov8n-seg", nc=3)
    assert transfer_weights(a, b.state_dict()) == (len(a.state_dict()), len(a.state_dict()))


# -- errors ----------------------------------------------------------------------------------------------


def test_bad_data_yaml_and_empty_dataset_errors(tmp_path):
    from edgeseg.data.errors import DatasetError

    with pytest.raises(DatasetError, match="not found"):
        Trainer(base_options(tmp_path / "missing.yaml", tmp_path)).train()
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"path: {tmp_path}\ntrain: .\nval: .\n")
    with pytest.raises(DatasetError, match="names"):
        Trainer(base_options(bad, tmp_path)).train()
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "data.yaml").write_text(f"path: {empty}\ntrain: images\nval: images\nnames: [a]\n")
    with pytest.raises(DatasetError, match="no images"):
        Trainer(base_options(empty / "data.yaml", tmp_path)).train()


def test_unknown_model_name_is_a_clear_error(data_yaml, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        Trainer(base_options(data_yaml, tmp_path, model="yolov9z-seg")).train()
    with pytest.raises(FileNotFoundError):
        Trainer(base_options(data_yaml, tmp_path, model=str(tmp_path / "nothing.pt"))).train()


# -- configuration ---------------------------------------------------------------------------------------


def test_config_defaults_are_ultralytics():
    c = TrainConfig()
    expected = {
        "epochs": 100,
        "batch": 16,
        "imgsz": 640,
        "optimizer": "auto",
        "lr0": 0.01,
        "lrf": 0.01,
        "momentum": 0.937,
        "weight_decay": 5e-4,
        "warmup_epochs": 3.0,
        "warmup_momentum": 0.8,
        "warmup_bias_lr": 0.1,
        "cos_lr": False,
        "close_mosaic": 10,
        "nbs": 64,
        "box": 7.5,
        "cls": 0.5,
        "dfl": 1.5,
        "overlap_mask": True,
        "mask_ratio": 4,
        "hsv_h": 0.015,
        "hsv_s": 0.7,
        "hsv_v": 0.4,
        "translate": 0.1,
        "scale": 0.5,
        "fliplr": 0.5,
        "mosaic": 1.0,
        "seed": 0,
        "deterministic": True,
        "amp": True,
        "patience": 100,
        "save_period": -1,
    }
    for key, value in expected.items():
        assert getattr(c, key) == value, key
    assert c.hyp["mosaic"] == 1.0 and set(c.hyp) >= {"hsv_h", "fliplr", "translate", "scale"}


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("epochs", 0, "epochs"),
        ("batch", -1, "batch"),
        ("lr0", 0, "lr0"),
        ("lrf", 1.5, "lrf"),
        ("momentum", 1.0, "momentum"),
        ("optimizer", "lion", "optimizer"),
        ("fliplr", 2, "fliplr"),
        ("imgsz", 16, "imgsz"),
        ("device", "gpu", "device"),
        ("workers", -2, "workers"),
        ("fraction", 0, "fraction"),
    ],
)
def test_config_rejects_bad_values(key, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{key: value})


def test_config_unknown_option_hint_and_rounding():
    with pytest.raises(ValueError, match="did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})
    assert TrainConfig(imgsz=100).imgsz == 128
    assert TrainConfig(optimizer="sgd").optimizer == "SGD"
    assert TrainConfig(resume="true").resume is True


# -- optimiser, schedule, EMA ----------------------------------------------------------------------------


def test_param_groups_and_auto_optimizer():
    from edgeseg.nn import build_model

    model = build_model("yolov8n-seg", nc=2)
    decay, bn, bias = param_groups(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(decay) + len(bn) + len(bias) == len(trainable)
    assert all(p.ndim > 1 for p in decay) and all(p.ndim == 1 for p in bn + bias)
    assert accumulate_steps(16, 64) == 4 and accumulate_steps(128, 64) == 1
    assert scaled_weight_decay(5e-4, 16, 4, 64) == pytest.approx(5e-4)
    assert nominal_iterations(128, 16, 64, 3) == 6
    small = choose_optimizer("auto", 0.01, 0.937, nc=80, iterations=6)
    assert (small.name, small.lr, small.momentum) == ("AdamW", round(0.002 * 5 / 84, 6), 0.9)
    big = choose_optimizer("auto", 0.01, 0.937, nc=80, iterations=10001)
    assert (big.name, big.lr, big.momentum) == ("MuSGD", 0.01, 0.9)  # Ultralytics 8.4
    assert choose_optimizer("adam", 0.003, 0.9, 2, 5).name == "Adam"
    opt = build_optimizer(model, choose_optimizer("SGD", 0.01, 0.937, 2, 5), decay=1e-3)
    assert [g["param_group"] for g in opt.param_groups] == ["bias", "weight", "bn"]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 1e-3, 0.0]
    assert opt.param_groups[1]["nesterov"] is True


def test_schedule_and_warmup():
    lf = lr_lambda(10, 0.01)
    assert lf(0) == 1.0 and lf(10) == pytest.approx(0.01) and lf(5) == pytest.approx(0.505)
    cos = lr_lambda(10, 0.01, cos_lr=True)
    assert cos(0) == pytest.approx(1.0) and cos(10) == pytest.approx(0.01)
    assert warmup_iterations(3, 10) == 100 and warmup_iterations(3, 100) == 300 and warmup_iterations(0, 10) == -1
    w = torch.nn.Parameter(torch.zeros(2, 2))
    b = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD(
        [{"params": [b], "param_group": "bias"}, {"params": [w], "param_group": "weight"}], lr=0.01, momentum=0.937
    )
    for g in opt.param_groups:
        g["initial_lr"] = 0.01
    acc = apply_warmup(opt, 0, 100, 1.0, warmup_bias_lr=0.1, warmup_momentum=0.8, momentum=0.937, nbs=64, batch=16)
    assert acc == 1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1) and opt.param_groups[1]["lr"] == 0.0
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.8)
    acc = apply_warmup(opt, 100, 100, 0.5, warmup_bias_lr=0.1, warmup_momentum=0.8, momentum=0.937, nbs=64, batch=16)
    assert acc == 4
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.005)] * 2
    assert opt.param_groups[1]["momentum"] == pytest.approx(0.937)


def test_ema_follows_the_model():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(model)
    assert ema.decay(1) == pytest.approx(0.9999 * (1 - math.exp(-1 / 2000)))
    before = ema.ema[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    d = ema.decay(1)
    assert torch.allclose(ema.ema[0].weight, before * d + model[0].weight * (1 - d))
    assert ema.updates == 1 and not any(p.requires_grad for p in ema.ema.parameters())


# -- command line ----------------------------------------------------------------------------------------


def test_cli_train_arguments(capsys):
    from edgeseg.cli import build_parser
    from edgeseg.cli.train import options_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--model",
            "yolov8n-seg.yaml",
            "--data",
            "d.yaml",
            "--epochs",
            "3",
            "--imgsz",
            "320",
            "--batch",
            "8",
            "--device",
            "cpu",
            "--optimizer",
            "sgd",
            "--cos-lr",
            "--close-mosaic",
            "1",
            "--resume",
            "--fraction",
            "0.5",
        ]
    )
    opts = options_from_args(args)
    assert opts == {
        "model": "yolov8n-seg.yaml",
        "data": "d.yaml",
        "epochs": 3,
        "imgsz": 320,
        "batch": 8,
        "device": "cpu",
        "optimizer": "SGD",
        "cos_lr": True,
        "close_mosaic": 1,
        "resume": True,
        "fraction": 0.5,
    }
    TrainConfig.from_dict(opts)  # every CLI option is a config option
    args = build_parser().parse_args(["train", "--resume", "runs/train/exp/weights/last.pt"])
    assert options_from_args(args) == {"resume": "runs/train/exp/weights/last.pt"}


def test_cli_train_reports_missing_options(capsys):
    from edgeseg.cli import main

    assert main(["train", "--model", "yolov8n-seg"]) == 1
    assert "--data" in capsys.readouterr().err
