"""Training YOLO26-seg: the trainer with the two-branch criterion (its weights per epoch, resumed exactly),
the five loss columns, checkpoints that load with the NMS-free head, and MuSGD (Ultralytics' optimizer=auto
for long runs) against the update rule written out by hand.

Kept small for CI: the trainer's tiny synthetic dataset (tests/test_train.py), yolo26n-seg at imgsz 64.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")
pytest.importorskip("cv2")

from edgeseg.nn import build_model  # noqa: E402
from edgeseg.train.optim import (  # noqa: E402
    MuSGD,
    build_optimizer,
    choose_optimizer,
    newton_schulz5,
)
from edgeseg.train.trainer import Trainer  # noqa: E402
from test_train import base_options, make_dataset, read_csv  # noqa: E402

LOSSES26 = ("train/box_loss", "train/seg_loss", "train/cls_loss", "train/l1_loss", "train/sem_loss")


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds26"))


def _options(data, project, **extra):
    return base_options(data, project, model="yolo26n-seg", **extra)


@pytest.fixture(scope="module")
def run26(data_yaml, tmp_path_factory):
    project = tmp_path_factory.mktemp("runs26")
    trainer = Trainer(_options(data_yaml, project, name="full"))
    return trainer, trainer.train()


def test_yolo26_trains_with_five_loss_terms_and_the_branch_schedule(run26):
    trainer, result = run26
    rows = read_csv(result.save_dir / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for key in LOSSES26:
        values = [float(r[key]) for r in rows]
        assert all(math.isfinite(v) and v >= 0 for v in values), (key, values)
    assert "train/dfl_loss" not in rows[0]
    # epoch e of E: o2m = 0.1 + 0.7 * (1 - e / (E - 1)): the last epoch trained with 0.1 / 0.9
    assert trainer.criterion.o2m == pytest.approx(0.1) and trainer.criterion.o2o == pytest.approx(0.9)


def test_yolo26_checkpoints_load_with_the_end_to_end_head(run26):
    from edgeseg.nn.load import load_model

    _, result = run26
    model, info = load_model(result.best)
    assert (info.arch, info.scale, info.nc) == ("yolo26", "n", 2)
    assert model.end2end
    model.eval()
    with torch.no_grad():
        rows, protos = model(torch.rand(1, 3, 64, 64))
    assert rows.shape[-1] == 6 + 32 and protos.shape == (1, 32, 16, 16)


def test_yolo26_resume_continues_exactly(run26, data_yaml, tmp_path):
    """The branch weights are a function of the epoch: a run cut in epoch 2 and resumed gives the same losses."""
    _, reference = run26
    cut = Trainer(_options(data_yaml, tmp_path, name="cut"))

    def stop_in_epoch_2(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    cut.add_callback("on_batch_end", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        cut.train()
    resumed_trainer = Trainer(resume=str(tmp_path / "cut" / "weights" / "last.pt"))
    resumed = resumed_trainer.train()
    assert resumed.start_epoch == 1 and [h["epoch"] for h in resumed.history] == [2, 3]
    for ref, got in zip(reference.history[1:], resumed.history):
        for key in LOSSES26:
            assert got[key] == ref[key], (key, ref["epoch"], ref[key], got[key])
    assert resumed_trainer.criterion.o2m == pytest.approx(0.1)


# ---- MuSGD -------------------------------------------------------------------------------------------


def test_musgd_groups_put_matrices_in_muon_and_the_yolo26_class_branches_at_3x_lr():
    model = build_model("yolo26n-seg", nc=3)
    opt = build_optimizer(model, choose_optimizer("auto", 0.01, 0.937, nc=3, iterations=20000), decay=5e-4)
    assert isinstance(opt, MuSGD) and (opt.muon, opt.sgd) == (0.2, 1.0)
    grouped = [p for g in opt.param_groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(grouped) == len(trainable) and {id(p) for p in grouped} == {id(p) for p in trainable}
    head = model.head
    fast = {id(p) for m in (head.cv3, head.one2one_cv3, head.proto.semseg) for p in m.parameters()}
    for g in opt.param_groups:
        ids = {id(p) for p in g["params"]}
        if not ids:
            continue
        assert ids <= fast or not ids & fast  # a group is all fast or all normal
        assert g["lr"] == pytest.approx(0.03 if ids <= fast else 0.01)
        if g["param_group"] == "muon":
            assert g["use_muon"] and g["weight_decay"] == 5e-4
            assert all(p.ndim in (2, 4) for p in g["params"])
        else:
            assert not g.get("use_muon") and all(p.ndim == 1 for p in g["params"])
    names = {g["param_group"] for g in opt.param_groups}
    assert names == {"bias", "weight", "bn", "muon"}


def _ns5_by_hand(g):
    x = g.bfloat16()
    x = x / (x.norm() + 1e-7)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    for _ in range(5):
        a = x @ x.T
        x = 3.4445 * x + (-4.7750 * a + 2.0315 * a @ a) @ x  # (c * a) @ a, in bfloat16
    return x.T if tall else x


def test_musgd_step_follows_the_muon_plus_sgd_rule():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(8, 4, 3, 3))
    b = torch.nn.Parameter(torch.randn(8))
    lr, mom, wd = 0.05, 0.9, 1e-2
    opt = MuSGD(
        [
            {"params": [w], "lr": lr, "momentum": mom, "nesterov": True, "weight_decay": wd, "use_muon": True},
            {"params": [b], "lr": lr, "momentum": mom, "nesterov": True, "weight_decay": 0.0},
        ]
    )
    w_ref, b_ref = w.detach().clone(), b.detach().clone()
    m = torch.zeros_like(w_ref)
    m_sgd = torch.zeros_like(w_ref)
    m_b = torch.zeros_like(b_ref)
    for step in range(3):
        gw, gb = torch.randn_like(w_ref), torch.randn_like(b_ref)
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        # Muon: m = mom m + (1 - mom) g; Nesterov direction mom m + (1 - mom) g, orthogonalised, at 0.2 lr
        m = mom * m + (1 - mom) * gw
        direction = mom * m + (1 - mom) * gw
        w_ref = w_ref - 0.2 * lr * _ns5_by_hand(direction.reshape(8, -1)).reshape(w_ref.shape).float()
        # then SGD-Nesterov with weight decay at lr
        g = gw + wd * w_ref
        m_sgd = mom * m_sgd + g
        w_ref = w_ref - lr * (g + mom * m_sgd)
        m_b = mom * m_b + gb
        b_ref = b_ref - lr * (gb + mom * m_b)
        torch.testing.assert_close(w.detach(), w_ref, atol=1e-5, rtol=1e-5, msg=f"step {step}")
        torch.testing.assert_close(b.detach(), b_ref, atol=1e-6, rtol=1e-6)


def test_newton_schulz_makes_singular_values_near_one():
    torch.manual_seed(1)
    for shape in ((16, 64), (64, 16)):
        s = torch.linalg.svdvals(newton_schulz5(torch.randn(*shape)).float())
        assert s.min() > 0.5 and s.max() < 1.5, (shape, s.min(), s.max())
    with pytest.raises(ValueError, match="matrix"):
        newton_schulz5(torch.randn(2, 3, 4))


def test_musgd_trains_a_yolo26_run(data_yaml, tmp_path):
    result = Trainer(_options(data_yaml, tmp_path, name="musgd", epochs=1, optimizer="MuSGD", lr0=0.01)).train()
    row = read_csv(result.save_dir / "results.csv")[0]
    assert all(math.isfinite(float(row[k])) for k in LOSSES26)
