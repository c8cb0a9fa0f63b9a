"""Seal pretraining end to end on a tiny synthetic set: loss falls, the teacher never moves, resume is exact,
and a 2-process torchrun run matches one process with gradient accumulation."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seal.core.schemas import PretrainSchema as PretrainConfig
from seal.core.settings import load_config
from seal.engine.pretrain import pretrain
from seal.models.export import load_backbone

TINY = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
FAST = ["augment.crop_size=[56,104]", "augment.min_pairings_per_image=32", "train.batch_size=2",
        "train.num_workers=0", "train.log_every=1", "optim.epochs=3", "train.deterministic=true"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    root = generate_dataset(tmp_path_factory.mktemp("pre") / "synth", sequences=1, frames=5, seed=3, cameras=1,
                            image_width=224, azimuth_steps=720, progress=False)
    return root


def _cfg(data: Path, run: Path, *extra: str) -> PretrainConfig:
    return load_config(PretrainConfig, TINY, [f"data.path={data}", f"train.run_dir={run}", *FAST, *extra])


def _losses(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _params(run: Path) -> dict[str, torch.Tensor]:
    model, _ = load_backbone(run / "backbone.pt")
    return {k: v for k, v in model.named_parameters()}


def test_teacher_never_changes_during_a_step(tiny_data, tmp_path):
    from seal.data import open_dataset
    from seal.engine.distributed import DistInfo
    from seal.engine.pretrain import PretrainTask, pair_samples
    from seal.samples.pairs import collate_pairs

    cfg = _cfg(tiny_data, tmp_path / "run")
    samples = pair_samples(cfg, open_dataset(tiny_data))
    batch = collate_pairs([samples[0], samples[1]])
    with pytest.warns(UserWarning, match="RANDOM"):
        task = PretrainTask(cfg, samples, DistInfo())
    teacher, student = task.teacher, task.student
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    head_before = student.head2d.proj.weight.detach().clone()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    for _ in range(2):
        losses = task.loss(student, batch, torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not teacher.training and all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert not torch.equal(head_before, student.head2d.proj.weight)
    assert all(torch.isfinite(losses[t]) and losses[t] > 0 for t in ("vfm", "tmp", "p2s"))
    assert student.backbone.stem[0].weight.grad is not None


@pytest.mark.slow
def test_a_few_hundred_steps_make_the_loss_fall(tiny_data, tmp_path):
    run = tmp_path / "long"
    pretrain(_cfg(tiny_data, run, "optim.epochs=150", "train.deterministic=false"))
    rows = _losses(run)
    assert len(rows) == 300
    first = sum(r["loss/total"] for r in rows[:10]) / 10
    last = sum(r["loss/total"] for r in rows[-20:]) / 20
    assert last < 0.75 * first, (first, last)


def test_loss_falls_over_short_training(tiny_data, tmp_path):
    run = tmp_path / "short"
    pretrain(_cfg(tiny_data, run, "optim.epochs=30"))
    rows = _losses(run)
    assert len(rows) == 60
    first = sum(r["loss/total"] for r in rows[:5]) / 5
    last = sum(r["loss/total"] for r in rows[-10:]) / 10
    assert last < 0.85 * first, (first, last)
    assert (run / "summary.json").is_file() and (run / "config.yaml").is_file() and (run / "tb").is_dir()
    payload = torch.load(run / "backbone.pt", weights_only=True)
    assert payload["format"] == "seal-backbone-v1" and payload["voxel"]["mode"] == "cylindrical"


def test_resume_after_a_kill_gives_the_same_weights(tiny_data, tmp_path):
    whole = tmp_path / "whole"
    pretrain(_cfg(tiny_data, whole))                                   # 3 epochs x 2 steps
    part = tmp_path / "part"
    pretrain(_cfg(tiny_data, part, "train.max_steps=3"))              # "killed" mid-epoch after step 3
    assert (part / "checkpoints" / "last.pt").is_file()
    pretrain(load_config(PretrainConfig, part / "config.yaml", ["train.max_steps=null"]), resume=part)
    a, b = _params(whole), _params(part)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    assert [r["loss/total"] for r in _losses(whole)] == [r["loss/total"] for r in _losses(part)]


def test_two_process_torchrun_matches_one_process(tiny_data, tmp_path):
    single = tmp_path / "single"
    pretrain(_cfg(tiny_data, single, "train.batch_size=1", "train.accumulate=2", "train.max_steps=1"))
    ddp = tmp_path / "ddp"
    overrides = [f"data.path={tiny_data}", f"train.run_dir={ddp}", *FAST, "train.batch_size=1", "train.max_steps=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", "29517", "-m", "seal", "pretrain", "--config", str(TINY), *overrides],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _losses(single)[0], _losses(ddp)[0]
    for term in ("loss/total", "loss/vfm", "loss/tmp", "loss/p2s"):
        assert two[term] == pytest.approx(one[term], rel=1e-5, abs=1e-6), term
    a, b = _params(single), _params(ddp)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
