"""mIoU as the official evaluators compute it: a class absent from both ground truth and predictions counts as 0
(semantic-kitti-api), is left out (nuScenes devkit) or counts as 1 (Waymo); each format reports its own
convention and the other one beside it, in results files, run summaries, robustness tables and the demo table."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from seal.core.frame import Dataset, DatasetFormat
from seal.data import get_format
from seal.data.formats import FORMATS
from seal.evaluation.metrics import (
    DEFAULT_CONVENTION,
    MIOU_CONVENTIONS,
    ConfusionMatrix,
    convention_key,
    other_convention,
    render_results,
    results_table,
    robustness_table,
    write_results,
)


def loop_ious(matrix: list[list[int]]) -> list[tuple[int, int]]:
    """Independent reference: (TP, TP + FP + FN) per class by explicit loops over a rows = ground truth,
    columns = prediction matrix."""
    n = len(matrix)
    out = []
    for c in range(n):
        tp = matrix[c][c]
        fp = sum(matrix[r][c] for r in range(n) if r != c)
        fn = sum(matrix[c][k] for k in range(n) if k != c)
        out.append((tp, tp + fp + fn))
    return out


def kitti_api_miou(matrix: list[list[int]]) -> float:
    """semantic-kitti-api's iouEval.getIoU: tp / (tp + fp + fn + 1e-15), mean over every evaluated class."""
    return sum(tp / (union + 1e-15) for tp, union in loop_ious(matrix)) / len(matrix)


def nuscenes_devkit_miou(matrix: list[list[int]]) -> float:
    """nuscenes-devkit's get_mean_iou: nanmean of intersection / union, NaN where union = 0."""
    values = [tp / union for tp, union in loop_ious(matrix) if union > 0]
    return sum(values) / len(values)


def waymo_miou(matrix: list[list[int]]) -> float:
    """Waymo's SegmentationMetricsIOU::ComputeIOU: IoU 1.0 unless the union is > 0, mean over all classes."""
    return sum(tp / union if union > 0 else 1.0 for tp, union in loop_ious(matrix)) / len(matrix)


def matrix_from(pred: list[int], target: list[int], num_classes: int) -> ConfusionMatrix:
    return ConfusionMatrix(num_classes).update(np.array(pred), np.array(target))


# Hand-made cases (train ids 1..C, 0 = ignore): each has at least one class absent from both sides.
CASES = [
    # class 1 perfect, 2 in gt never predicted, 3 predicted never in gt, 4 absent from both
    ([1, 1, 3, 3], [1, 1, 2, 2], 4),
    # five classes, two absent (3 and 5), ignored points predicted as anything
    ([1, 2, 2, 4, 1, 4, 2, 3], [1, 2, 1, 4, 4, 4, 0, 0], 5),
    # one class only present; the others absent
    ([2, 2, 2], [2, 2, 2], 6),
]


@pytest.mark.parametrize("pred, target, c", CASES)
def test_conventions_match_the_official_rules_on_hand_made_matrices(pred, target, c) -> None:
    cm = matrix_from(pred, target, c)
    m = cm.matrix.tolist()
    assert cm.absent.any()
    assert cm.miou("absent-as-zero") == pytest.approx(kitti_api_miou(m), abs=1e-12)
    assert cm.miou("absent-excluded") == pytest.approx(nuscenes_devkit_miou(m), abs=1e-12)
    assert cm.miou("absent-as-one") == pytest.approx(waymo_miou(m), abs=1e-12)
    assert cm.miou("absent-as-zero") < cm.miou("absent-excluded") <= cm.miou("absent-as-one")
    assert cm.mious() == {k: cm.miou(k) for k in MIOU_CONVENTIONS}
    per_class = loop_ious(m)
    for convention, fill in (("absent-as-zero", 0.0), ("absent-as-one", 1.0)):
        expected = [tp / union if union else fill for tp, union in per_class]
        np.testing.assert_allclose(cm.iou(convention), expected, rtol=0, atol=1e-12)
    excluded = cm.iou("absent-excluded")
    assert [math.isnan(v) for v in excluded] == [union == 0 for _, union in per_class]


def test_first_case_by_hand() -> None:
    cm = matrix_from(*CASES[0])
    assert cm.miou("absent-as-zero") == pytest.approx(1 / 4)       # (1 + 0 + 0 + 0) / 4
    assert cm.miou("absent-excluded") == pytest.approx(1 / 3)      # (1 + 0 + 0) / 3
    assert cm.miou("absent-as-one") == pytest.approx(2 / 4)        # (1 + 0 + 0 + 1) / 4


def test_every_class_present_makes_the_conventions_agree() -> None:
    rng = np.random.default_rng(3)
    target = np.concatenate([np.arange(1, 8), rng.integers(0, 8, 500)])
    pred = np.where(rng.random(target.size) < 0.7, np.maximum(target, 1), rng.integers(1, 8, target.size))
    cm = ConfusionMatrix(7).update(pred, target)
    assert not cm.absent.any()
    values = list(cm.mious().values())
    assert values == pytest.approx([values[0]] * 3, abs=1e-15)


def test_matrix_convention_is_the_default_and_is_checked() -> None:
    cm = ConfusionMatrix(4, convention="absent-as-zero").update(np.array([1, 1, 3, 3]), np.array([1, 1, 2, 2]))
    assert cm.miou() == cm.miou("absent-as-zero") and cm.iou()[3] == 0.0
    assert ConfusionMatrix(4).convention == DEFAULT_CONVENTION == "absent-excluded"
    with pytest.raises(ValueError, match="absent-as-zero"):
        ConfusionMatrix(4, convention="absent")
    with pytest.raises(ValueError, match="convention"):
        cm.miou("zero")
    empty = ConfusionMatrix(3, convention="absent-as-zero").update(np.array([1, 2]), np.array([0, 0]))
    assert all(math.isnan(v) for v in empty.mious().values())     # nothing scored: no number, any convention
    summary = cm.miou_summary()
    assert summary == {"miou": 0.25, "miou_convention": "absent-as-zero", "miou_absent_as_zero": 0.25,
                       "miou_absent_excluded": pytest.approx(1 / 3), "miou_absent_as_one": 0.5}
    assert other_convention("absent-as-zero") == "absent-excluded" == other_convention("absent-as-one")
    assert other_convention("absent-excluded") == "absent-as-zero"
    assert convention_key("absent-excluded") == "miou_absent_excluded"


def test_each_format_reports_its_benchmarks_convention() -> None:
    expected = {name: "absent-as-zero" for name in FORMATS}
    expected.update({"nuscenes": "absent-excluded", "nuscenes-c": "absent-excluded", "waymo": "absent-as-one",
                     "pandaset": "absent-excluded"})  # ScaLR's np.nanmean (no official PandaSet benchmark)
    assert {name: f.miou_convention for name, f in FORMATS.items()} == expected
    assert DatasetFormat.miou_convention == DEFAULT_CONVENTION
    assert all(f.miou_convention in MIOU_CONVENTIONS for _, f in FORMATS.items())


def test_evaluation_scores_by_the_datasets_format() -> None:
    from seal.engine.frame_loop import miou_convention

    def dataset(fmt):
        return Dataset(root=None, kind="x", sequences=[], label_map=None, format=fmt)

    assert miou_convention(dataset(get_format("semantickitti"))) == "absent-as-zero"
    assert miou_convention(dataset(get_format("nuscenes"))) == "absent-excluded"
    assert miou_convention(dataset(None)) == DEFAULT_CONVENTION


@pytest.mark.parametrize("convention", list(MIOU_CONVENTIONS))
def test_results_files_carry_both_numbers(tmp_path, convention) -> None:
    cm = ConfusionMatrix(4, convention=convention).update(np.array([1, 1, 3, 3, 2]), np.array([1, 1, 2, 2, 0]))
    names = ["car", "road", "tree", "pole"]
    other = other_convention(convention)
    rows = results_table(cm, names)
    assert [r["class"] for r in rows] == names + [f"mean ({other})", "mean"]
    assert rows[-1]["iou"] == pytest.approx(100 * cm.miou(convention))
    assert rows[-2]["iou"] == pytest.approx(100 * cm.miou(other))
    assert rows[3]["iou"] == {"absent-as-zero": 0.0, "absent-excluded": None, "absent-as-one": 100.0}[convention]
    csv_path, json_path = write_results(cm, names, tmp_path, "val")
    doc = json.loads(json_path.read_text())
    assert doc["miou_convention"] == convention and doc["miou_other_convention"] == other
    assert doc["miou"] == pytest.approx(100 * cm.miou(convention))
    assert doc["miou_absent_as_zero"] == pytest.approx(100 * kitti_api_miou(cm.matrix.tolist()), abs=1e-3)
    assert doc["miou_absent_excluded"] == pytest.approx(100 * nuscenes_devkit_miou(cm.matrix.tolist()), abs=1e-3)
    assert doc["miou_absent_as_one"] == pytest.approx(100 * waymo_miou(cm.matrix.tolist()), abs=1e-3)
    assert doc["miou"] == doc[convention_key(convention)] and [c["class"] for c in doc["classes"]] == names
    table = {r["class"]: r for r in csv.DictReader(csv_path.open())}
    assert float(table["mean"]["iou"]) == doc["miou"]
    assert float(table[f"mean ({other})"]["iou"]) == doc[convention_key(other)]
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160)
    render_results(cm, names, console=console)
    text = console.file.getvalue()
    assert f"mIoU ({convention})" in text and f"mIoU ({other})" in text
    assert f"{doc['miou']:.2f}" in text and f"{doc[convention_key(other)]:.2f}" in text


def test_robustness_rows_by_either_convention_and_rendering(capsys) -> None:
    from rich.console import Console

    from seal.engine.evaluation import render_robustness

    results = {"fog": [0.5, 0.4, 0.3]}
    other = {"fog": [0.6, 0.5, 0.4]}
    rows = robustness_table(results, 0.6, baseline={"fog": [0.5]})
    rows_other = robustness_table(other, 0.7, baseline={"fog": [0.5]})
    assert rows[-1]["clean"] == 60.0 and rows_other[-1]["clean"] == 70.0
    no_clean = robustness_table(other, None, baseline={"fog": [0.5]})
    assert no_clean[0]["rr"] is None and no_clean[-1]["rr"] is None and no_clean[-1]["ce"] == rows_other[-1]["ce"]
    console = Console(file=io.StringIO(), width=200)
    render_robustness(rows, "base", rows_other, "absent-as-zero", console=console)
    text = console.file.getvalue()
    assert "50.0 (60.0)" in text and "clean mIoU 60.0 (70.0)" in text
    assert "counts as IoU 0" in text and "left out of the mean" in text


def _fake_summary(official: float, other: float, convention: str = "absent-as-zero") -> dict:
    values = {convention: official, other_convention(convention): other}
    return {"miou": official, "miou_convention": convention,
            **{convention_key(c): values.get(c, 0.5) for c in MIOU_CONVENTIONS}}


def test_demo_table_shows_the_official_number_and_the_other_beside_it() -> None:
    from seal.demo import SETTINGS, DemoPlan, _markdown, _render, _summarise

    plan = DemoPlan(seeds=[0, 1])
    results = {name: {0: _fake_summary(0.189 - i / 100, 0.193 - i / 100),
                      1: _fake_summary(0.173 - i / 100, 0.181 - i / 100)} for i, name in enumerate(SETTINGS)}
    summary = _summarise(results, plan, 12.0)
    assert summary["miou_convention"] == "absent-as-zero" and summary["other_convention"] == "absent-excluded"
    first = summary["rows"][0]
    assert first["miou_by_seed"] == {"0": 18.9, "1": 17.3} and first["other_by_seed"] == {"0": 19.3, "1": 18.1}
    assert first["mean"] == pytest.approx(18.1) and first["other_mean"] == pytest.approx(18.7)
    assert first["std"] == pytest.approx(0.8) and first["other_std"] == pytest.approx(0.6)
    text = _markdown(summary)
    assert "| random init | 18.9 (19.3) | 17.3 (18.1) | 18.1 ± 0.8 (18.7 ± 0.6) |" in text
    assert "counts as IoU 0" in text and "in parentheses" in text
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    _render(summary, console=console)
    assert "18.9 (19.3)" in console.file.getvalue()
