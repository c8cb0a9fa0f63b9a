"""Probes and evaluations on nothing, or on the wrong classes (issue 20, case 5): each refused in one line with exit
status 2, before anything is trained, computed or written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from seal.cli.main import main
from seal.core.schemas import DownstreamSchema
from seal.core.settings import load_config
from seal.data import open_dataset
from seal.engine.downstream import run_downstream

TINY = Path(__file__).resolve().parents[1] / "seal" / "configs" / "downstream_tiny.yaml"
SPLIT = ['split.train_sequences=["00"]', 'split.val_sequences=["01"]']
SKITTI = Path(__file__).resolve().parents[1] / "seal" / "data" / "labelmaps" / "semantickitti.yaml"


def _one_error(err: str) -> str:
    assert "Traceback" not in err, err[-2000:]
    lines = re.findall(r"seal: error: [^\r\n]*", err)
    assert len(lines) == 1, err[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("downfaults") / "synth", sequences=2, frames=2, seed=5, cameras=1,
                            image_width=320, azimuth_steps=512, progress=False)


@pytest.fixture(scope="module")
def probe(data, tmp_path_factory) -> Path:
    """A probe trained for two steps: its model.pt stores the semantickitti class names."""
    cfg = load_config(DownstreamSchema, TINY, [f"data.path={data}", f"train.run_dir={tmp_path_factory.mktemp('p')}/run",
                                              *SPLIT, "train.max_steps=2", "train.batch_size=1"])
    return run_downstream(cfg, "probe", progress=False)


def _label_map(path: Path, spec_change) -> Path:
    spec = yaml.safe_load(SKITTI.read_text())
    spec_change(spec)
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_probe_with_no_labelled_training_point_is_refused_before_training(data, tmp_path, capsys):
    def unknown_ids(spec):
        spec["raw_to_train"] = {5000: "car", 5001: "road"}

    labels = _label_map(tmp_path / "other_map.yaml", unknown_ids)
    run = tmp_path / "run"
    assert main(["probe", str(data), f"data.label_map={labels}", *SPLIT, f"train.run_dir={run}"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line.startswith(f"seal: error: {labels}: label map semantickitti gives none of the points"), line
    assert re.search(r"they hold raw ids \d+(, \d+)*", line) and "the map knows raw ids 5000, 5001" in line, line
    assert "data.label_map=" in line
    assert not run.exists()                                  # nothing trained, no run folder, no model, no mIoU


def test_evaluate_refuses_a_reordered_label_map_of_the_same_length(data, probe, tmp_path, capsys):
    def swap(spec):
        classes = spec["classes"]
        car, road = (next(i for i, c in enumerate(classes) if c["name"] == n) for n in ("car", "road"))
        classes[car], classes[road] = classes[road], classes[car]

    reordered = _label_map(tmp_path / "reordered.yaml", swap)
    out = tmp_path / "eval"
    assert main(["evaluate", str(probe / "model.pt"), str(data), f"data.label_map={reordered}", "--out", str(out)]) == 2
    line = _one_error(capsys.readouterr().err)
    assert (f"{probe / 'model.pt'}: predicts train id 1 as 'car' but label map {reordered} names it 'road'"
            in line), line
    assert "(semantickitti)" in line and not out.exists()
    assert main(["evaluate", str(probe / "model.pt"), str(data), "--out", str(out)]) == 0   # its own map: fine


def test_robustness_with_a_clean_miou_of_0_is_refused_before_any_corrupted_set(data, probe, tmp_path, capsys,
                                                                              monkeypatch):
    from seal.models.segmentation import load_model, save_model

    model, meta = load_model(probe / "model.pt")
    dataset = open_dataset(data)
    seen = set().union(*(set(dataset[i].labels.tolist()) for i in range(len(dataset))))
    absent = next(i for i in range(len(meta["class_names"])) if i + 1 not in seen)  # a class the streets lack
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-1.0)
        model.classifier.bias[absent] = 1.0                     # predicts that class everywhere: mIoU 0
    blind = tmp_path / "blind"
    save_model(blind / "model.pt", model, {k: v for k, v in meta.items() if k not in ("format", "backbone_config",
                                                                                        "num_classes")})
    (blind / "config.yaml").write_text((probe / "config.yaml").read_text())

    def never(*args, **kwargs):
        raise AssertionError("a corrupted set was evaluated")

    import seal.robustness

    monkeypatch.setattr(seal.robustness, "corrupt_frame", never)
    out = tmp_path / "eval"
    assert main(["evaluate", str(blind / "model.pt"), str(data), "--robustness", "--out", str(out)]) == 2
    line = _one_error(capsys.readouterr().err)
    assert "clean mIoU is 0 on the 2 val frame(s): robustness" in line and "no corrupted set was evaluated" in line
    assert f"the clean results are in {out}" in line, line
    assert (out / "val.json").is_file() and not (out / "robustness.json").exists()
