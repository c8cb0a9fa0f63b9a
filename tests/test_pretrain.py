"""Seal pretraining end to end on a tiny synthetic set: loss falls, the teacher never moves, resume is exact,
and a 2-process torchrun run matches one process with gradient accumulation; collation checks every index."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seal.core.batch import PairFrame, PairSample
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


# ----------------------------------------------------------------------------------------------------------------
# Collation checks every index on the CPU (the losses trust a collated batch)
# ----------------------------------------------------------------------------------------------------------------


def _sample(name: str, seed: int) -> PairSample:
    """A small valid pair sample: 2 crops of 4 x 6 pixels, 10 pairings, frames of 6 and 5 voxels."""
    rng = np.random.default_rng(seed)

    def frame(voxels: int, points: int) -> PairFrame:
        inverse = np.concatenate([np.arange(voxels), rng.integers(0, voxels, points - voxels)])
        return PairFrame(coords=rng.integers(0, 9, (voxels, 3)).astype(np.int32),
                         feats=rng.random((voxels, 1), dtype=np.float32),
                         xyz=rng.random((voxels, 3), dtype=np.float32), inverse=inverse.astype(np.int64),
                         segments=rng.integers(-1, 4, points))

    crops, height, width, pairs = 2, 4, 6, 10
    return PairSample(id=name, frame_t=frame(6, 10), frame_n=frame(5, 9),
                      images=rng.random((crops, 3, height, width), dtype=np.float32),
                      superpixels=rng.integers(0, 5, (crops, height, width)), pair_voxel=rng.integers(0, 6, pairs),
                      pair_image=rng.integers(0, crops, pairs), pair_row=rng.integers(0, height, pairs),
                      pair_col=rng.integers(0, width, pairs))


def _set(field: str, index: int | tuple, value: int):
    def spoil(sample: PairSample) -> None:
        owner, name = (getattr(sample, field.split(".")[0]), field.split(".")[1]) if "." in field else (sample, field)
        getattr(owner, name)[index] = value
    return spoil


def _shorten(sample: PairSample) -> None:
    sample.frame_n.segments = sample.frame_n.segments[:-1]


@pytest.mark.parametrize("spoil, message", [
    (_set("pair_voxel", 3, 6), r"pair_voxel indexes outside \[0, 6\): its values span \[\d, 6\]"),
    (_set("pair_voxel", 0, -1), r"pair_voxel indexes outside \[0, 6\): its values span \[-1, \d\]"),
    (_set("pair_image", 0, 2), r"pair_image indexes outside \[0, 2\)"),
    (_set("pair_row", 0, 4), r"pair_row indexes outside \[0, 4\)"),
    (_set("pair_col", 0, -1), r"pair_col indexes outside \[0, 6\)"),
    (_set("superpixels", (1, 2, 3), 1 << 16), r"superpixels holds superpixel ids outside \[0, 65536\)"),
    (_set("frame_t.inverse", 9, 6), r"frame_t.inverse indexes outside \[0, 6\)"),
    (_set("frame_n.segments", 0, -2), r"frame_n.segments holds superpoint ids outside \[-1, inf\)"),
    (_shorten, r"frame_n.inverse / segments must have one row each, got 9 / 8"),
], ids=["pairing-voxel-high", "pairing-voxel-negative", "pairing-image", "pairing-row", "pairing-col",
        "superpixel-id", "inverse-map", "superpoint-id", "superpoint-count"])
def test_collation_rejects_an_out_of_range_index(spoil, message) -> None:
    from seal.core.errors import DataError
    from seal.samples.pairs import collate_pairs

    good, bad = _sample("seq/good", 0), _sample("seq/bad", 1)
    collate_pairs([good, bad])
    spoil(bad)
    with pytest.raises(DataError, match=f"^sample seq/bad: {message}"):
        collate_pairs([good, bad])


def test_a_collated_batch_is_checked_and_trusted_by_the_losses() -> None:
    """`PairBatch.check` (which collation calls) names the field of a batch built elsewhere; samples pickle (they
    leave the loader's worker processes) and collate to the same batch."""
    import dataclasses
    import pickle

    from seal.samples.pairs import collate_pairs

    samples = [_sample("a", 2), _sample("b", 3)]
    batch = collate_pairs(samples)
    batch.check()
    again = collate_pairs(pickle.loads(pickle.dumps(samples)))
    assert all(torch.equal(getattr(batch, f.name), getattr(again, f.name)) for f in dataclasses.fields(batch)
               if isinstance(getattr(batch, f.name), torch.Tensor))
    voxels, pixels = batch.coords.shape[0], batch.pixel_superpixel.numel()
    for name, value, message in (("pair_pixel", pixels, rf"pair_pixel indexes outside \[0, {pixels}\)"),
                                 ("point_voxel_n", voxels, rf"point_voxel_n indexes outside \[0, {voxels}\)"),
                                 ("pair_voxel", -1, r"pair_voxel indexes outside")):
        spoilt = getattr(batch, name).clone()
        spoilt[0] = value
        with pytest.raises(ValueError, match=rf"PairBatch of \['a', 'b'\]: {message}"):
            dataclasses.replace(batch, **{name: spoilt}).check()
    with pytest.raises(ValueError, match="point_voxel_t / segments_t must have one row each"):
        dataclasses.replace(batch, segments_t=batch.segments_t[1:]).check()


def test_a_bad_sample_stops_a_loader_worker_with_one_line() -> None:
    from seal.core.errors import SealError
    from seal.engine.loading import make_loader
    from seal.samples.pairs import collate_pairs

    samples = [_sample("seq/0", 4), _sample("seq/1", 5)]
    samples[1].pair_row[0] = 99
    load = make_loader(samples, collate_pairs, num_workers=1, device=torch.device("cpu"))
    with pytest.raises(SealError) as err:
        list(load([[0, 1]]))
    assert str(err.value).startswith("sample seq/1: pair_row indexes outside [0, 4)") and "\n" not in str(err.value)


def test_collate_frames_checks_each_frame() -> None:
    from seal.core.batch import FrameSample
    from seal.core.errors import DataError
    from seal.samples.frames import collate_frames

    frame = FrameSample(coords=np.zeros((3, 3), np.int32), feats=np.zeros((3, 1), np.float32),
                        xyz=np.zeros((3, 3), np.float32), inverse=np.array([0, 1, 2, 3]), labels=np.ones(4, np.int64),
                        id="seq/7")
    with pytest.raises(DataError, match=r"^frame seq/7: inverse indexes outside \[0, 3\): its values span \[0, 3\]"):
        collate_frames([frame])
