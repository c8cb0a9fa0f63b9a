"""Downstream protocols on tiny synthetic data: splits, linear probe (frozen backbone), fine-tuning,
evaluation at full resolution, predictions on disk, robustness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seal.cli import main
from seal.core.config import SplitConfig
from seal.core.schemas import DownstreamSchema as DownstreamConfig
from seal.core.settings import load_config
from seal.data import open_dataset
from seal.data.splits import split_indices
from seal.engine.downstream import run_downstream
from seal.models.segmentation import build_model, load_model

TINY = Path(__file__).resolve().parents[1] / "seal" / "configs" / "downstream_tiny.yaml"


@pytest.fixture(autouse=True)
def single_thread():
    """spconv's CPU scatter sums in thread order; with one thread, two evaluations of a model agree point for
    point (the comparisons below are exact up to rounding, not statistical)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("down") / "synth", sequences=3, frames=4, seed=5, cameras=1,
                            image_width=160, azimuth_steps=720, progress=False)


def _cfg(data: Path, run: Path, *extra: str) -> DownstreamConfig:
    return load_config(DownstreamConfig, TINY, [f"data.path={data}", f"train.run_dir={run}",
                                                 'split.train_sequences=["00","01"]', 'split.val_sequences=["02"]',
                                                 "optim.epochs=3", "train.batch_size=2", *extra])


def test_split_follows_the_rule(data):
    dataset = open_dataset(data)
    train, val = split_indices(dataset, SplitConfig(fraction=25, train_sequences=["00", "01"], val_sequences=["02"]))
    assert train == [0, 4]                        # every 4th of the 8 sorted training frames: 00/000000, 01/000000
    assert val == [8, 9, 10, 11]
    train, _ = split_indices(dataset, SplitConfig(fraction=100, train_sequences=["00", "01"], val_sequences=["02"]))
    assert train == list(range(8))
    from seal.core.errors import ConfigError

    with pytest.raises(ConfigError, match="split.train_sequences"):
        split_indices(dataset, SplitConfig())


def test_probe_keeps_the_backbone_frozen_and_evaluate_agrees(data, tmp_path, capsys):
    run = run_downstream(_cfg(data, tmp_path / "probe"), "probe", progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["miou"] <= 1.0 and summary["train_frames"] == 8 and summary["val_frames"] == 4
    # SemanticKITTI layout: its evaluator's rule (absent classes count 0) by default, the other one beside it
    assert summary["miou_convention"] == "absent-as-zero" and summary["miou"] == summary["miou_absent_as_zero"]
    assert summary["miou_absent_excluded"] >= summary["miou_absent_as_zero"]
    val = json.loads((run / "val.json").read_text())
    assert val["miou"] == pytest.approx(100 * summary["miou"], abs=1e-3) and val["miou_convention"] == "absent-as-zero"
    assert val["miou_absent_excluded"] == pytest.approx(100 * summary["miou_absent_excluded"], abs=1e-3)
    model, meta = load_model(run / "model.pt")
    torch.manual_seed(0)
    fresh, _ = build_model(None, _cfg(data, tmp_path).model.backbone, 19)
    trained = model.backbone.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in fresh.backbone.state_dict().items())  # BN buffers too
    assert not torch.equal(fresh.classifier.weight, model.classifier.weight)
    preds = tmp_path / "preds"
    assert main(["evaluate", str(run / "model.pt"), str(data), "--save-predictions", str(preds),
                 "--out", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "val.json").read_text())
    assert result["miou"] == pytest.approx(100 * summary["miou"], abs=1e-3)   # the same confusion matrix
    assert result["miou_absent_excluded"] == pytest.approx(100 * summary["miou_absent_excluded"], abs=1e-3)
    labels = sorted((preds / "sequences" / "02" / "predictions").glob("*.label"))
    assert len(labels) == 4
    frame = open_dataset(data)[8]
    raw = np.fromfile(labels[0], dtype=np.uint32)
    assert raw.shape[0] == frame.num_points
    lut = open_dataset(data).label_map
    assert (lut.to_train(raw) > 0).all()          # every written raw id maps back to a predicted class


def test_finetune_trains_the_backbone(data, tmp_path):
    run = run_downstream(_cfg(data, tmp_path / "ft", "optim.epochs=2", "optim.lr=0.05", "optim.head_lr=0.2",
                              "train.log_every=1"),
                         "finetune", progress=False)
    model, meta = load_model(run / "model.pt")
    torch.manual_seed(0)
    fresh, _ = build_model(None, _cfg(data, tmp_path).model.backbone, 19)
    assert meta["mode"] == "finetune"
    changed = [k for k, v in fresh.backbone.named_parameters() if not torch.equal(v, dict(
        model.backbone.named_parameters())[k])]
    assert len(changed) > 10
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4                 # header + 2 epochs x 4 batches of 2 frames


def test_robustness_rows(data, tmp_path):
    from seal.core.config import VoxelConfig as VoxelSpec
    from seal.engine.evaluation import robustness
    from seal.engine.frame_loop import evaluate_frames

    run = run_downstream(_cfg(data, tmp_path / "rb", "optim.epochs=1"), "probe", progress=False)
    model, meta = load_model(run / "model.pt")
    dataset = open_dataset(data)
    voxel = VoxelSpec(**meta["voxel"])
    clean = evaluate_frames(model, dataset, [8], voxel, torch.device("cpu"), progress=False).miou()
    rows = robustness(model, dataset, [8], voxel, torch.device("cpu"), clean, None, tmp_path / "out")
    assert [r["corruption"] for r in rows][-1] == "mean" and len(rows) == 9
    assert all(r["light"] is not None and r["rr"] is not None for r in rows[:-1])
    assert rows[-1]["ce"] is not None and (tmp_path / "out" / "robustness.json").is_file()
    doc = json.loads((tmp_path / "out" / "robustness.json").read_text())
    assert doc["rows"] == rows and doc["miou_convention"] == "absent-as-zero"
    assert doc["other_convention"] == "absent-excluded" and len(doc["rows_other"]) == 9
    assert all(o["mean"] >= r["mean"] for r, o in zip(rows, doc["rows_other"], strict=True))  # absent: 0 vs out


@pytest.mark.slow
def test_quick_demo_runs_end_to_end(tmp_path):
    from seal.demo import DemoPlan, run_demo

    summary = run_demo(tmp_path / "demo", DemoPlan.quick(), progress=False)
    assert [r["setting"] for r in summary["rows"]] == ["random init", "L_vfm only", "Seal (L_vfm + L_tmp + L_p2s)"]
    assert (tmp_path / "demo" / "predictions.png").is_file() and (tmp_path / "demo" / "similarity.png").is_file()


def test_nuscenes_predictions_are_written_as_lidarseg(nuscenes_root, tmp_path):
    from seal.core.config import BackboneConfig
    from seal.core.config import VoxelConfig as VoxelSpec
    from seal.engine.frame_loop import evaluate_frames
    from seal.models.minkunet import MinkUNet
    from seal.models.segmentation import SegmentationModel

    dataset = open_dataset(nuscenes_root)
    torch.manual_seed(0)
    model = SegmentationModel(MinkUNet(BackboneConfig(stem_channels=8, planes=[8] * 8, layers=[1] * 8)), 16)
    cm = evaluate_frames(model, dataset, [0], VoxelSpec(), torch.device("cpu"), predictions_dir=tmp_path,
                         progress=False)
    assert cm.total == 0                           # the keyframe has no lidarseg labels: nothing to score
    token = dataset.sequences[0].frame_names[0]
    raw = np.fromfile(tmp_path / "lidarseg" / f"{token}_lidarseg.bin", dtype=np.uint8)
    assert raw.shape[0] == dataset[0].num_points
    assert (dataset.label_map.to_train(raw) > 0).all()   # raw lidarseg indices of predicted classes


def test_probe_preset_name_resolves_to_the_downstream_family():
    from seal.core.settings import resolve_preset

    assert resolve_preset("tiny", ("downstream", "pretrain")).name == "downstream_tiny.yaml"
    assert resolve_preset("tiny", ("pretrain", "downstream")).name == "pretrain_tiny.yaml"


@pytest.mark.parametrize("mode,extra", [("finetune", []), ("probe", ["downstream.standardize_features=true"])])
def test_torchrun_two_processes(data, tmp_path, mode, extra):
    import os
    import subprocess
    import sys

    run = tmp_path / mode
    overrides = [f"train.run_dir={run}", 'split.train_sequences=["00","01"]', 'split.val_sequences=["02"]',
                 "optim.epochs=1", "train.batch_size=2", *extra]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                             "29531" if mode == "probe" else "29532", "-m", "seal", mode, str(data), "--config",
                             str(TINY), *overrides], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["val_frames"] == 4
    # the rank-summed confusion matrix equals a single-process evaluation of the saved model
    assert main(["evaluate", str(run / "model.pt"), str(data), "--out", str(tmp_path / "eval")]) == 0
    single = json.loads((tmp_path / "eval" / "val.json").read_text())["miou"]
    assert single == pytest.approx(100 * summary["miou"], abs=1e-3)


@pytest.mark.parametrize("mode", ["finetune", "probe"])
def test_resume_of_a_downstream_run_gives_the_same_model(mode, data, tmp_path, capsys):
    """probe / finetune runs checkpoint like pretraining: a run stopped after 3 steps and resumed through the
    command line ends with the weights of an uninterrupted run."""
    extra = ["optim.epochs=2", "train.log_every=1"]
    whole = run_downstream(_cfg(data, tmp_path / "whole", *extra), mode, progress=False)
    part = tmp_path / "part"
    run_downstream(_cfg(data, part, *extra, "train.max_steps=3"), mode, progress=False)
    assert (part / "checkpoints" / "last.pt").is_file() and "--resume" in (part / "README.md").read_text()
    assert main([mode, str(data), "--resume", str(part), "train.max_steps=null"]) == 0
    a, b = load_model(whole / "model.pt")[0].state_dict(), load_model(part / "model.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]


def test_an_empty_validation_scan_is_skipped_and_counted(data, tmp_path):
    import shutil

    holed = tmp_path / "holed"
    shutil.copytree(data, holed)
    for folder, ext in (("velodyne", "bin"), ("labels", "label")):
        (holed / "sequences" / "02" / folder / f"000001.{ext}").write_bytes(b"")
    run = run_downstream(_cfg(holed, tmp_path / "probe", "optim.epochs=1"), "probe", progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_frames_skipped_empty"] == 1 and summary["val_frames"] == 4
    preds = tmp_path / "preds"
    assert main(["evaluate", str(run / "model.pt"), str(holed), "--save-predictions", str(preds)]) == 0
    files = sorted((preds / "sequences" / "02" / "predictions").glob("*.label"))
    assert len(files) == 4 and files[1].stat().st_size == 0 and files[0].stat().st_size > 0
