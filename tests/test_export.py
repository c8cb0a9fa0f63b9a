"""`seal export`: a run folder as a Hugging Face Hub folder (config.json, model.safetensors, model card) that
`seal.load_backbone`, `--pretrained` and `seal evaluate` read back exactly."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

import seal
from seal.cli import main
from seal.core.config import BackboneConfig
from seal.core.errors import ConfigError, DataError
from seal.data import open_dataset
from seal.engine.export_run import export_run
from seal.engine.rundir import write_summary
from seal.engine.runrecord import dataset_identity, write_record
from seal.models.backbones import build_backbone
from seal.models.export import backbone_config, export_backbone
from seal.models.segmentation import load_model

TINY = BackboneConfig(stem_channels=8, planes=[8, 16, 16, 16, 16, 8, 8, 8], layers=[1] * 8)
LOSS = {"vfm": 1.0, "tmp": 0.5, "p2s": 0.25, "ppkt": 0.0, "scalr": 0.0, "tau": 0.07}


@pytest.fixture(autouse=True)
def single_thread():
    """spconv's CPU scatter sums in thread order: with one thread an evaluation repeats the probe's own exactly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A pretraining run folder made by seal's own writers (a hand-named teacher weights file), a real probe run
    that starts from its backbone.pt, and an unrelated probe record beside them."""
    from seal.synth import generate_dataset

    base = tmp_path_factory.mktemp("export")
    data = generate_dataset(base / "synth", sequences=3, frames=4, seed=5, cameras=1, image_width=160,
                            azimuth_steps=720, progress=False)
    pretrain = base / "runs" / "pretrain-a"
    pretrain.mkdir(parents=True)
    torch.manual_seed(3)
    backbone = build_backbone(TINY)
    for p in backbone.parameters():  # not the init: an export must carry trained values
        p.data.add_(0.01 * torch.randn_like(p))
    export_backbone(pretrain / "backbone.pt", backbone, {"size": 0.1, "mode": "cylindrical", "angle_bin_deg": 1.0})
    write_record(pretrain, "pretrain", {"data": [dataset_identity(open_dataset(data))], "teacher": None})
    (pretrain / "config.yaml").write_text(yaml.safe_dump({
        "teacher": {"backbone": "dinov2_vitb14", "weights": "/weights/dinov2_vitb14_pretrain.pth"},
        "superpixels": {"method": "slic"}, "optim": {"name": "sgd", "lr": 0.02, "schedule": "cosine"},
        "train": {"batch_size": 2, "seed": 7}}))
    write_summary(pretrain, {"steps": 123, "epochs_completed": 3, "seconds": 45.6, "device": "cpu", "processes": 1,
                             "teacher": "dinov2_vitb14 (weights: dinov2_vitb14_pretrain.pth)",
                             "teacher_pretrained": True, "loss_first": {"total": 9.5}, "loss_last": {"total": 4.25},
                             "loss_weights": LOSS})
    probe = base / "runs" / "probe-a"
    assert main(["probe", str(data), "--config", "tiny", f"train.run_dir={probe}", "optim.epochs=1",
                 'split.train_sequences=["00","01"]', 'split.val_sequences=["02"]',
                 f"model.pretrained={pretrain / 'backbone.pt'}"]) == 0
    other = base / "runs" / "probe-other"
    shutil.copytree(probe, other)
    record = json.loads((other / "run.json").read_text())
    record["pretrained"]["sha256"] = "0" * 64
    (other / "run.json").write_text(json.dumps(record))
    return {"data": data, "pretrain": pretrain, "probe": probe, "backbone": backbone, "base": base}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_round_trip_is_bit_identical_and_pickle_free(runs, tmp_path):
    out = export_run(runs["pretrain"], tmp_path / "hub")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    raw = (out / "model.safetensors").read_bytes()  # safetensors: u64 header length, then a JSON header
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    expected = runs["backbone"].state_dict()
    assert {k for k in header if k != "__metadata__"} == {f"backbone.{k}" for k in expected}
    loaded, meta = seal.load_backbone(out)
    for key, tensor in loaded.state_dict().items():
        assert tensor.dtype == expected[key].dtype and torch.equal(tensor, expected[key]), key
    assert meta["voxel"] == {"size": 0.1, "mode": "cylindrical", "angle_bin_deg": 1.0}
    config = json.loads((out / "config.json").read_text())
    assert config["seal_version"] == seal.__version__ and config["architecture"] == "minkunet"
    assert config["source"]["weights_sha256"] == _sha(runs["pretrain"] / "backbone.pt")


def test_config_json_alone_gives_every_shape(runs, tmp_path):
    from safetensors import safe_open

    out = export_run(runs["pretrain"], tmp_path / "hub")
    config = json.loads((out / "config.json").read_text())
    built = build_backbone(backbone_config(config["backbone"])).state_dict()  # no weights read
    assert config["num_parameters"] == sum(p.numel() for p in runs["backbone"].parameters())
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        shapes = {k.removeprefix("backbone."): list(f.get_slice(k).get_shape()) for k in f.keys()}
    assert shapes == {k: list(v.shape) for k, v in built.items()}


def test_model_card_states_the_runs_facts(runs, tmp_path):
    card = (export_run(runs["pretrain"], tmp_path / "hub") / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "seal" and front["license"] == "unknown" and front["datasets"] == ["semantickitti"]
    assert "`dinov2_vitb14`, weights file `dinov2_vitb14_pretrain.pth`" in card
    assert "1 x L_vfm" in card and "0.5 x L_tmp" in card and "0.25 x L_p2s" in card and "ppkt" not in card.lower()
    assert "123 steps, 3 epochs, batch 2" in card and "seed 7" in card and "12 frames" in card
    val = json.loads((runs["probe"] / "val.json").read_text())
    assert "| `probe-a` | probe 100 % |" in card and f"| {val['miou']:.1f} (absent-as-zero) |" in card
    assert "probe-other" not in card  # started from another backbone (its run.json's sha256)
    car = next(c for c in val["classes"] if c["class"] == "car")
    assert f"| car | {car['iou']:.1f} |" in card


def test_probe_and_evaluate_read_an_export_folder(runs, tmp_path):
    out = export_run(runs["pretrain"], tmp_path / "hub")
    probe = tmp_path / "probe-from-hub"
    assert main(["probe", str(runs["data"]), "--pretrained", str(out), "--config", "tiny", f"train.run_dir={probe}",
                 "optim.epochs=1", 'split.train_sequences=["00","01"]', 'split.val_sequences=["02"]']) == 0
    record = json.loads((probe / "run.json").read_text())
    assert record["pretrained"]["sha256"] == _sha(out / "model.safetensors")
    trained, _ = load_model(probe / "model.pt")  # a probe freezes the backbone: the exported weights, unchanged
    exported = runs["backbone"].state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in trained.backbone.state_dict().items())
    # the probe run exported in turn keeps its classifier; seal evaluate reads the folder
    head_out = export_run(probe, tmp_path / "hub-probe")
    model, meta = load_model(head_out)
    assert meta["num_classes"] == 19 and meta["label_map"] == "semantickitti" and len(meta["class_names"]) == 19
    for key, tensor in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], tensor), key
    assert "linear classifier over 19 classes" in (head_out / "README.md").read_text()
    assert main(["evaluate", str(head_out), str(runs["data"]), "--out", str(tmp_path / "eval")]) == 0  # its split
    evaluated = json.loads((tmp_path / "eval" / "val.json").read_text())
    assert evaluated["miou"] == pytest.approx(json.loads((probe / "val.json").read_text())["miou"], abs=1e-3)


def test_a_config_of_another_shape_is_one_line(runs, tmp_path):
    out = export_run(runs["pretrain"], tmp_path / "hub")
    config = json.loads((out / "config.json").read_text())
    config["backbone"]["planes"] = [8, 16, 16, 32, 16, 8, 8, 8]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError) as err:
        seal.load_backbone(out)
    message = str(err.value)
    assert "model.safetensors" in message and "shape" in message and "\n" not in message
    with pytest.raises(DataError, match="missing"):  # a config of another family
        config["backbone"] = asdict(BackboneConfig(name="waffleiron"))
        config["backbone"]["waffleiron"] = {"shape": "tiny"}
        (out / "config.json").write_text(json.dumps(config))
        seal.load_backbone(out)
    (out / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DataError, match="not a seal backbone export"):
        seal.load_backbone(out)


def test_export_refuses_foreign_folders_and_leaves_nothing_half_written(runs, tmp_path, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an earlier seal export"):
        export_run(runs["pretrain"], foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="not a seal run folder"):
        export_run(foreign, tmp_path / "x")
    out = export_run(runs["pretrain"], tmp_path / "hub")
    before = (out / "model.safetensors").read_bytes()
    import safetensors.torch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        export_run(runs["probe"], out)  # replacing the earlier export fails half-way
    assert (out / "model.safetensors").read_bytes() == before  # the earlier export is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub", "mine"]  # no staging folder left behind


def test_written_files_and_folders_are_readable_by_others_as_the_umask_says(runs, tmp_path):
    import os

    from seal.core.atomic import write_text_atomic

    mask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        out = export_run(runs["pretrain"], tmp_path / "hub")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.iterdir())
