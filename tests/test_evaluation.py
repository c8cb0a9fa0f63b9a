"""Metrics (confusion matrix, IoU rules, result files), Robo3D CE/RR, and the downstream CE + Lovász loss."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch

from seal.core.errors import DataError
from seal.evaluation.metrics import (
    CORRUPTIONS,
    ConfusionMatrix,
    corruption_error,
    load_robustness_baseline,
    mce,
    mrr,
    render_results,
    resilience_rate,
    results_table,
    robustness_table,
    write_results,
)
from seal.losses.segmentation import lovasz_softmax, segmentation_loss

# ----------------------------------------------------------------------------------------------- confusion matrix


def loop_iou(pred: np.ndarray, target: np.ndarray, num_classes: int) -> list[float]:
    """Independent reference: explicit TP/FP/FN counting per class over non-ignored points."""
    out = []
    for c in range(1, num_classes + 1):
        tp = fp = fn = 0
        for p, t in zip(pred.tolist(), target.tolist(), strict=True):
            if t == 0:
                continue
            tp += p == c and t == c
            fp += p == c and t != c
            fn += p != c and t == c
        out.append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
    return out


def test_miou_matches_loop_reference_on_random_predictions() -> None:
    rng = np.random.default_rng(0)
    c = 7
    target = rng.integers(0, c + 1, size=3000)
    pred = np.where(rng.random(3000) < 0.6, np.maximum(target, 1), rng.integers(1, c + 1, size=3000))
    cm = ConfusionMatrix(c)
    for chunk in np.array_split(np.arange(3000), 5):  # accumulated over several updates
        cm.update(pred[chunk], torch.from_numpy(target[chunk]))
    ref = loop_iou(pred, target, c)
    np.testing.assert_allclose(cm.iou(), ref, rtol=0, atol=1e-12)
    assert cm.miou() == pytest.approx(float(np.nanmean(ref)))
    keep = target != 0
    assert cm.accuracy() == pytest.approx(float((pred[keep] == target[keep]).mean()))
    assert cm.total == int(keep.sum())


def test_absent_class_rules() -> None:
    cm = ConfusionMatrix(4)
    # class 1: perfect; class 2: in gt, never predicted; class 3: predicted, absent from gt; class 4: absent both
    cm.update(np.array([1, 1, 3, 3]), np.array([1, 1, 2, 2]))
    iou = cm.iou()
    assert iou[0] == 1.0 and iou[1] == 0.0 and iou[2] == 0.0
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx(1 / 3)  # NaN class excluded, the two zero classes count


def test_ignore_points_are_skipped_whatever_predicted() -> None:
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[1, 2], [3, 3]]), torch.tensor([[0, 2], [0, 0]]))  # any shape, torch input
    assert cm.total == 1 and cm.matrix[1, 1] == 1
    assert cm.accuracy() == 1.0
    empty = ConfusionMatrix(3)
    empty.update(np.array([1, 2]), np.array([0, 0]))
    assert math.isnan(empty.miou()) and math.isnan(empty.accuracy())
    with pytest.raises(ValueError, match="train ids"):
        cm.update(np.array([0]), np.array([1]))  # prediction 0 (ignore) is not a class
    with pytest.raises(ValueError, match="train ids"):
        cm.update(np.array([1]), np.array([4]))
    with pytest.raises(ValueError):
        cm.update(np.array([1, 2]), np.array([1]))


def test_merge_and_all_reduce(tmp_path) -> None:
    rng = np.random.default_rng(1)
    p, t = rng.integers(1, 5, 500), rng.integers(0, 5, 500)
    whole = ConfusionMatrix(4).update(p, t)
    a, b = ConfusionMatrix(4).update(p[:200], t[:200]), ConfusionMatrix(4).update(p[200:], t[200:])
    assert np.array_equal(a.merge(b).matrix, whole.matrix)
    with pytest.raises(ValueError):
        a.merge(ConfusionMatrix(5))
    assert np.array_equal(whole.all_reduce().matrix, a.matrix)  # no process group: no-op
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert np.array_equal(ConfusionMatrix(4).update(p, t).all_reduce().matrix, whole.matrix)
    finally:
        dist.destroy_process_group()


def test_results_files_and_table(tmp_path) -> None:
    cm = ConfusionMatrix(3).update(np.array([1, 1, 2, 2, 2]), np.array([1, 2, 2, 2, 0]))
    names = ["car", "road", "tree"]
    rows = results_table(cm, names)
    assert [r["class"] for r in rows] == names + ["mean (absent-as-zero)", "mean"]  # other convention, then own
    assert rows[0]["iou"] == pytest.approx(50.0) and rows[1]["iou"] == pytest.approx(200 / 3, abs=1e-3)
    assert rows[2]["iou"] is None and rows[-1]["iou"] == pytest.approx((50 + 200 / 3) / 2, abs=1e-3)
    assert rows[-1]["accuracy"] == pytest.approx(75.0) and rows[-1]["gt_points"] == 4
    csv_path, json_path = write_results(cm, names, tmp_path / "out", "val")
    doc = json.loads(json_path.read_text())
    assert doc["miou"] == rows[-1]["iou"] and doc["points"] == 4 and doc["classes"][2]["iou"] is None
    table = list(csv.DictReader(csv_path.open()))
    assert table[1]["class"] == "road" and table[2]["iou"] == "" and len(table) == 5
    assert float(table[3]["iou"]) == pytest.approx((50 + 200 / 3) / 3, abs=1e-3)  # the absent tree as 0
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120)
    render_results(cm, names, console=console)
    text = console.file.getvalue()
    assert "road" in text and "66.67" in text and "mIoU" in text


# ----------------------------------------------------------------------------------------------- robustness


def test_ce_rr_formulas_against_hand_computation() -> None:
    model, base = [0.5, 0.4, 0.3], [0.6, 0.5, 0.4]
    assert corruption_error(model, base) == pytest.approx(1.8 / 1.5)  # (0.5+0.6+0.7) / (0.4+0.5+0.6)
    assert corruption_error(model, [0.5]) == pytest.approx(1.2)  # baseline as its severity mean: same number
    assert resilience_rate(model, 0.6) == pytest.approx(1.2 / 1.8)
    results = {"fog": model, "snow": [0.6, 0.6, 0.6]}
    baseline = {"fog": base, "snow": [0.8, 0.8, 0.8]}
    assert mce(results, baseline) == pytest.approx((1.2 + 2.0) / 2)
    assert mrr(results, 0.6) == pytest.approx((2 / 3 + 1.0) / 2)
    with pytest.raises(ValueError, match="fractions"):
        corruption_error([55.0, 50.0, 45.0], base)
    with pytest.raises(ValueError, match="baseline"):
        mce({"fog": model, "wet_ground": model}, {"fog": base})


def test_packaged_baselines_reproduce_published_numbers() -> None:
    nus = load_robustness_baseline("nuscenes")
    assert set(nus.miou) == set(CORRUPTIONS) and nus.clean == pytest.approx(0.7576)
    assert mce(nus.miou, nus.miou) == pytest.approx(1.0)
    assert 100 * mrr(nus.miou, nus.clean) == pytest.approx(74.44, abs=0.01)  # Robo3D README, nuScenes-C
    kit = load_robustness_baseline("semantickitti")
    assert all(len(v) == 3 for v in kit.miou.values())
    published_avg = {"fog": 55.87, "motion_blur": 32.92, "cross_sensor": 46.05}
    published_rr = {"fog": 89.02, "motion_blur": 52.45, "cross_sensor": 73.37}
    for c in published_avg:
        assert 100 * np.mean(kit.miou[c]) == pytest.approx(published_avg[c], abs=0.006)
        assert 100 * resilience_rate(kit.miou[c], kit.clean) == pytest.approx(published_rr[c], abs=0.01)
    assert 100 * mrr(kit.miou, kit.clean) == pytest.approx(81.90, abs=0.01)
    with pytest.raises(ValueError, match="available"):
        load_robustness_baseline("waymo")


def test_user_baseline_file(tmp_path) -> None:
    good = tmp_path / "base.yaml"
    good.write_text("mine:\n  clean: 80\n  miou:\n    fog: [70, 60, 50]\n")
    base = load_robustness_baseline("mine", good)
    assert base.clean == pytest.approx(0.8) and base.miou["fog"] == pytest.approx((0.7, 0.6, 0.5))
    bad = tmp_path / "bad.yaml"
    bad.write_text("mine:\n  miou:\n    fog: [70]\n")
    with pytest.raises(DataError, match="malformed"):
        load_robustness_baseline("mine", bad)
    with pytest.raises(DataError, match="not found"):
        load_robustness_baseline("mine", tmp_path / "missing.yaml")


def test_robustness_table_rows() -> None:
    results = {c: [0.7, 0.6, 0.5] for c in CORRUPTIONS}
    rows = robustness_table(results, clean_miou=0.75)
    assert [r["corruption"] for r in rows] == list(CORRUPTIONS) + ["mean"]
    fog = rows[0]
    assert (fog["light"], fog["moderate"], fog["heavy"], fog["mean"]) == pytest.approx((70, 60, 50, 60))
    assert fog["ce"] == pytest.approx(100 * 0.4 / (1 - 0.5364), abs=1e-3)
    assert fog["rr"] == pytest.approx(100 * 1.8 / 2.25, abs=1e-3)
    nus = load_robustness_baseline("nuscenes")
    assert rows[-1]["ce"] == pytest.approx(100 * mce(results, nus.miou), abs=1e-3)
    assert rows[-1]["rr"] == pytest.approx(80.0, abs=1e-3) and rows[-1]["corruptions"] == 8
    partial = robustness_table({"fog": [0.5, 0.5, 0.5]}, 0.6, baseline={"fog": [0.5]})
    assert partial[0]["ce"] == pytest.approx(100.0) and partial[-1]["corruptions"] == 1


# ----------------------------------------------------------------------------------------------- Lovász


def loop_lovasz(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Reference Lovász-softmax: per present class, sort errors with Python and build the Jaccard increments."""
    losses = []
    for c in range(1, probs.shape[1] + 1):
        keep = [i for i in range(len(labels)) if int(labels[i]) != 0]
        fg = [1.0 if int(labels[i]) == c else 0.0 for i in keep]
        if sum(fg) == 0:
            continue
        errors = [(fg[j] - probs[i, c - 1]).abs() for j, i in enumerate(keep)]
        order = sorted(range(len(keep)), key=lambda j: -float(errors[j].detach()))
        gts, inter_seen, union_extra, prev, total = sum(fg), 0.0, 0.0, 0.0, 0.0
        for j in order:
            inter_seen += fg[j]
            union_extra += 1.0 - fg[j]
            jac = 1.0 - (gts - inter_seen) / (gts + union_extra)
            total = total + errors[j] * (jac - prev)
            prev = jac
        losses.append(total)
    return torch.stack(losses).mean()


def test_lovasz_matches_loop_reference_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(60, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (60,), generator=gen)  # class 5 absent, some ignore
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    fast = lovasz_softmax(torch.softmax(a, 1), labels)
    slow = loop_lovasz(torch.softmax(b, 1), labels)
    fast.backward()
    slow.backward()
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    probs = torch.softmax(logits, 1)
    per_class = [float(lovasz_softmax(probs, labels, classes=[c])) for c in range(1, 5)]
    assert fast.item() == pytest.approx(np.mean(per_class))
    absent = float(probs[labels != 0, 4].max())  # an absent class costs its largest false probability
    everything = float(lovasz_softmax(probs, labels, classes="all"))
    assert everything == pytest.approx((sum(per_class) + absent) / 5)


def test_lovasz_perfect_prediction_is_zero_and_ignore_only_is_zero() -> None:
    labels = torch.tensor([1, 2, 3, 0, 2, 1])
    probs = torch.nn.functional.one_hot((labels - 1).clamp(min=0), 3).double()
    assert float(lovasz_softmax(probs, labels)) == pytest.approx(0.0, abs=1e-12)
    logits = 30.0 * torch.nn.functional.one_hot((labels - 1).clamp(min=0), 3).double()
    assert float(segmentation_loss(logits, labels)) == pytest.approx(0.0, abs=1e-9)
    x = torch.randn(4, 3, requires_grad=True)
    loss = segmentation_loss(x, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(x.grad == 0)


def test_segmentation_loss_logit_layouts() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(40, 4, generator=gen)
    labels = torch.randint(0, 4, (40,), generator=gen)
    with_ignore = torch.cat([torch.full((40, 1), 9.0), logits], dim=1)
    expected = segmentation_loss(logits, labels)
    assert float(segmentation_loss(with_ignore, labels, num_classes=4)) == pytest.approx(float(expected))
    ce_only = torch.nn.functional.cross_entropy(logits[labels > 0], labels[labels > 0] - 1)
    assert float(segmentation_loss(logits, labels, lovasz_weight=0.0)) == pytest.approx(float(ce_only))
    with pytest.raises(ValueError, match="train ids"):
        segmentation_loss(logits, torch.full((40,), 5))
    with pytest.raises(ValueError, match="columns"):
        segmentation_loss(logits, labels, num_classes=6)


def test_ce_plus_lovasz_decreases_on_toy_problem() -> None:
    torch.manual_seed(0)
    centers = torch.randn(4, 8) * 2
    labels = torch.randint(1, 5, (256,))
    feats = centers[labels - 1] + torch.randn(256, 8)
    labels[::10] = 0
    head = torch.nn.Linear(8, 4)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    losses = []
    for _ in range(20):
        loss = segmentation_loss(head(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.isfinite(losses))
