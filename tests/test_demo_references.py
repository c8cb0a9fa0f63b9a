"""The ablation's reference row "2D oracle teacher alone on the paired points" (seal.demo_references): computed
through the teacher's forward and class read-out, it must equal the confusion of the rendered class maps read
directly at each point's pixel (the oracle is exact at full resolution); a degraded oracle scores lower."""

from __future__ import annotations

from pathlib import Path

import pytest

from seal.data import open_dataset
from seal.demo_references import teacher_2d_miou
from seal.evaluation.metrics import ConfusionMatrix
from tests.paired_classes import pixel_and_point_classes


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("refs") / "ds", sequences=1, frames=2, seed=4, cameras=1,
                            image_width=320, azimuth_steps=720, progress=False, segments=True)


def test_the_oracle_alone_equals_its_class_maps_at_the_pixels(data):
    matrix = ConfusionMatrix(open_dataset(data).label_map.num_classes, convention="absent-as-zero")
    silent = labelled = 0
    for said, target in pixel_and_point_classes(data):
        silent += int(((said == 0) & (target > 0)).sum())
        labelled += int((target > 0).sum())
        matrix.update(said[said > 0], target[said > 0])
    own = teacher_2d_miou(data, "00", "oracle")
    assert own["miou"] == pytest.approx(100 * matrix.miou(), abs=1e-6)
    assert own["silent_percent"] == pytest.approx(100 * silent / labelled, abs=1e-9) and own["silent_percent"] < 5
    degraded = teacher_2d_miou(data, "00", "oracle_degraded")
    assert degraded["miou"] < own["miou"] - 10


def test_the_sweep_has_a_random_teacher_anchor_per_objective_and_draws_it(tmp_path):
    from seal.demo import SWEEP_ANCHOR, SWEEP_LEVELS, SWEEP_OBJECTIVES, sweep_settings
    from seal.demo_references import sweep_chart

    settings = sweep_settings()
    assert len(settings) == len(SWEEP_OBJECTIVES) * (len(SWEEP_LEVELS) + 1)
    for objective, overrides in SWEEP_OBJECTIVES.items():
        assert settings[f"{objective}, {SWEEP_ANCHOR}"] == overrides  # no teacher override: the random ViT
        assert "teacher.model_kwargs={confusion: 0.3}" in settings[f"{objective}, confusion 0.3"]
    points = [{"objective": "Seal", "label": SWEEP_ANCHOR, "teacher_miou": None, "mean": 10.0, "std": 0.0},
              {"objective": "Seal", "label": "confusion 0", "teacher_miou": 80.0, "mean": 14.0, "std": 0.5},
              {"objective": "Seal", "label": "degraded", "teacher_miou": 25.0, "mean": 12.0, "std": 0.5}]
    from PIL import Image

    with Image.open(sweep_chart(points, tmp_path / "sweep.png")) as image:
        assert image.size[0] > 300 and image.size[1] > 200


def test_demo_options_shape_the_plan(monkeypatch, tmp_path):
    import seal.demo
    from seal.cli import main

    seen = {}
    monkeypatch.setattr(seal.demo, "run_demo", lambda out, plan, ablation, sweep: seen.update(plan=plan, sweep=sweep))
    assert main(["demo", "--sweep", "--out", str(tmp_path), "demo.pretrain_epochs=8", "demo.cameras=6"]) == 0
    assert seen["sweep"] and seen["plan"].pretrain_epochs == 8 and seen["plan"].cameras == 6
    assert seen["plan"].seeds == [0]  # the sweep's default: one seed
    assert main(["demo", "--out", str(tmp_path), "demo.seeds=[3,4]"]) == 0
    assert seen["plan"].seeds == [3, 4] and seen["plan"].pretrain_epochs == 3 and seen["plan"].cameras == 1
    assert main(["demo", "--out", str(tmp_path), "demo.cameras=7"]) == 2  # one line naming the key
