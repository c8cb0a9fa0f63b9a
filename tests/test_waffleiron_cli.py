"""WaffleIron through the command line: every objective's loss falls over a few steps, and probe, fine-tuning and
evaluation run on its export (the point-based backbone is a drop-in for MinkUNet everywhere)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from seal.cli.main import main

WAFFLEIRON = ["model.backbone.name=waffleiron", "model.backbone.waffleiron.shape=tiny"]
FAST = ["augment.crop_size=[56,104]", "augment.min_pairings_per_image=32", "train.batch_size=2",
        "train.num_workers=0", "train.log_every=1", "train.deterministic=true"]
# the same 2 frame pairs at every step, without random augmentations, so a few steps must lower the loss
SAME = ["augment.rotate=false", "augment.flip=false", "augment.cuboid_drop=false", "augment.hflip=false",
        "augment.crop_scale=[1.0,1.0]"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("wi") / "synth", sequences=2, frames=3, seed=3, cameras=1,
                            image_width=224, azimuth_steps=720, progress=False)


def _losses(run: Path, term: str) -> list[float]:
    with open(run / "metrics.csv") as handle:
        return [float(row[f"loss/{term}"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("objective, term, lr", [("ppkt", "ppkt", 0.005), ("scalr", "scalr", 0.2),
                                                 ("seal", "total", 0.02)])
def test_every_objective_trains_a_waffleiron(objective, term, lr, tiny_data, tmp_path) -> None:
    torch.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["pretrain", str(tiny_data), "--config", "tiny", "--objective", objective, *FAST, *SAME,
                 *WAFFLEIRON, "optim.epochs=50", "train.max_steps=4", f"optim.lr={lr}",
                 f"train.run_dir={run}"]) == 0
    values = _losses(run, term)
    assert len(values) == 4 and all(math.isfinite(v) and v > 0 for v in values)
    assert values[-1] < values[0] - 0.01 * abs(values[0]), values
    export = torch.load(run / "backbone.pt", map_location="cpu", weights_only=True)
    assert export["backbone_config"]["name"] == "waffleiron"
    assert any(k.startswith("waffleiron.spatial_mix.") for k in export["state_dict"])


def test_probe_finetune_and_evaluate_a_waffleiron(tiny_data, tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    pre = tmp_path / "pre"
    assert main(["pretrain", str(tiny_data), "--config", "tiny", *FAST, *WAFFLEIRON, "train.max_steps=2",
                 f"train.run_dir={pre}"]) == 0
    split = ["split.train_sequences=['00']", "split.val_sequences=['01']", "optim.epochs=1", "train.num_workers=0"]
    for mode in ("probe", "finetune"):
        run = tmp_path / mode
        assert main([mode, str(tiny_data), "--config", "tiny", "--pretrained", str(pre / "backbone.pt"), *split,
                     f"train.run_dir={run}"]) == 0
        summary = json.loads((run / "summary.json").read_text())
        assert 0.0 <= summary["miou"] <= 1.0
        model = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
        assert model["backbone_config"]["name"] == "waffleiron"
    out = tmp_path / "eval"
    assert main(["evaluate", str(tmp_path / "probe" / "model.pt"), str(tiny_data), "--split", "all",
                 "data.sequences=['01']", "--out", str(out)]) == 0
    assert "mIoU" in capsys.readouterr().out
