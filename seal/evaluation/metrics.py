"""Segmentation metrics (confusion matrix, per-class IoU, mIoU) and Robo3D robustness metrics (CE, RR, mCE, mRR).

Class ids are seal's train ids 1..C; ground-truth points labelled ``ignore_index`` (0) are skipped, so one
matrix accumulated over a whole split at full point resolution gives the paper's metric (docs/METHOD.md §8).

Official evaluators disagree about a class absent from both the ground truth and the predictions of the
evaluated split (TP + FP + FN = 0); `MIOU_CONVENTIONS` names the rules, each dataset format says which one is
its benchmark's (`DatasetFormat.miou_convention`), and every results file carries all of them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seal.core.atomic import write_text_atomic
from seal.core.config import SEVERITIES
from seal.core.errors import DataError


def _packaged_corruptions() -> tuple[str, ...]:
    """The Robo3D corruptions in the benchmark's order: the keys of the packaged baselines, as first listed."""
    spec = yaml.safe_load((resources.files("seal.evaluation") / "robustness_baselines.yaml").read_text()) or {}
    return tuple(dict.fromkeys(str(c) for entry in spec.values() for c in entry["miou"]))


# the eight corruptions of the Robo3D benchmark, those mCE averages; seal.robustness registers their implementations
# and any plugin's, which are reported beside them
ROBO3D_CORRUPTIONS: tuple[str, ...] = _packaged_corruptions()
CORRUPTIONS = ROBO3D_CORRUPTIONS  # its older name


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x).reshape(-1)


MIOU_CONVENTIONS: dict[str, str] = {
    # semantic-kitti-api, auxiliary/np_ioueval.py iouEval.getIoU: union = tp + fp + fn + 1e-15, mean over every
    # class not in `ignore` (evaluate_semantics.py); an absent class scores 0 / 1e-15 = 0
    "absent-as-zero": "a class absent from both ground truth and predictions counts as IoU 0 (semantic-kitti-api)",
    # nuscenes-devkit, eval/lidarseg/utils.py ConfusionMatrix.get_per_class_iou (intersection / union, NaN where
    # the union is 0) and get_mean_iou (np.nanmean)
    "absent-excluded": "a class absent from both ground truth and predictions is left out of the mean "
                       "(nuScenes devkit)",
    # waymo-open-dataset, metrics/segmentation_metrics.cc SegmentationMetricsIOU::ComputeIOU: every IoU starts at
    # 1.0 and is replaced only where the union is > 0 (SLidR's utils/metrics.py compute_IoU_from_cmatrix too)
    "absent-as-one": "a class absent from both ground truth and predictions counts as IoU 1 (Waymo Open Dataset)",
}
DEFAULT_CONVENTION = "absent-excluded"  # a matrix built without a dataset format (the nuScenes devkit's rule)
_ABSENT_IOU = {"absent-as-zero": 0.0, "absent-excluded": math.nan, "absent-as-one": 1.0}


def check_convention(convention: str) -> str:
    if convention not in MIOU_CONVENTIONS:
        raise ValueError(f"unknown mIoU convention {convention!r}; choose {' | '.join(MIOU_CONVENTIONS)}")
    return convention


def other_convention(convention: str) -> str:
    """The convention reported beside ``convention``: absent-excluded, or absent-as-zero beside absent-excluded."""
    return "absent-as-zero" if check_convention(convention) == "absent-excluded" else "absent-excluded"


def convention_key(convention: str) -> str:
    """The results-file key of a convention's mIoU: ``miou_absent_as_zero``, ``miou_absent_excluded``, ..."""
    return "miou_" + check_convention(convention).replace("-", "_")


class ConfusionMatrix:
    """Accumulates a C x C matrix (rows = ground truth, columns = prediction) over train ids 1..C.

    IoU rules: IoU_c = TP / (TP + FP + FN). A class present in the ground truth but never predicted has IoU 0; a
    class predicted but absent from the ground truth also has IoU 0 (false positives only); both count in the
    mean. A class absent from both prediction and ground truth (TP+FP+FN = 0) follows ``convention`` (see
    `MIOU_CONVENTIONS`): IoU 0 in the mean (absent-as-zero, SemanticKITTI), NaN and left out of the mean
    (absent-excluded, nuScenes), or IoU 1 (absent-as-one, Waymo). A matrix without any non-ignored point has
    mIoU NaN under every convention (there is nothing to score).
    """

    def __init__(self, num_classes: int, ignore_index: int = 0, convention: str = DEFAULT_CONVENTION) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.convention = check_convention(convention)
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: Any, target: Any) -> ConfusionMatrix:
        """Add predictions and ground truth (numpy or torch, any equal shape); ``ignore_index`` targets skip."""
        p, t = _as_numpy(pred).astype(np.int64), _as_numpy(target).astype(np.int64)
        if p.shape != t.shape:
            raise ValueError(f"prediction has {p.size} values but target has {t.size}")
        keep = t != self.ignore_index
        p, t = p[keep], t[keep]
        c = self.num_classes
        for name, v in (("target", t), ("prediction", p)):
            if v.size and (v.min() < 1 or v.max() > c):
                raise ValueError(f"{name} ids must be train ids 1..{c} (or ignore {self.ignore_index} for "
                                 f"targets); found range [{v.min()}, {v.max()}]")
        self.matrix += np.bincount((t - 1) * c + (p - 1), minlength=c * c).reshape(c, c)
        return self

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts (e.g. from another worker or split)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class and {self.num_classes}-class matrices")
        self.matrix += other.matrix
        return self

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the matrix over all DDP ranks in place when torch.distributed is initialised; no-op otherwise."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        device = torch.device("cpu")
        if dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        buf = torch.from_numpy(self.matrix.copy()).to(device)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        self.matrix = buf.cpu().numpy().astype(np.int64)
        return self

    def reset(self) -> None:
        self.matrix[:] = 0

    @property
    def gt_counts(self) -> np.ndarray:
        """Ground-truth points per class (ignored points excluded)."""
        return self.matrix.sum(axis=1)

    @property
    def pred_counts(self) -> np.ndarray:
        """Predicted points per class, over non-ignored points."""
        return self.matrix.sum(axis=0)

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    @property
    def absent(self) -> np.ndarray:
        """Boolean mask [C] of the classes absent from both ground truth and predictions (TP + FP + FN = 0)."""
        return (self.gt_counts + self.pred_counts) == 0

    def iou(self, convention: str | None = None) -> np.ndarray:
        """Per-class IoU in [0, 1], shape [C]; an absent class is NaN, 0 or 1 by ``convention`` (default: the
        matrix's own)."""
        fill = _ABSENT_IOU[check_convention(convention or self.convention)]
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.gt_counts + self.pred_counts - tp
        return np.where(denom > 0, tp / np.maximum(denom, 1), fill)

    def miou(self, convention: str | None = None) -> float:
        """Mean IoU by ``convention`` (default: the matrix's own); NaN when no non-ignored point was counted."""
        if self.total == 0:
            return math.nan
        return float(np.nanmean(self.iou(convention)))

    def mious(self) -> dict[str, float]:
        """{convention: mIoU} for every convention of `MIOU_CONVENTIONS`."""
        return {c: self.miou(c) for c in MIOU_CONVENTIONS}

    def miou_summary(self) -> dict[str, Any]:
        """Run-summary keys (fractions): ``miou`` (this matrix's convention), ``miou_convention``, and
        ``miou_absent_as_zero`` / ``miou_absent_excluded`` / ``miou_absent_as_one``."""
        return {"miou": self.miou(), "miou_convention": self.convention,
                **{convention_key(c): v for c, v in self.mious().items()}}

    def accuracy(self) -> float:
        """Overall point accuracy over non-ignored points; NaN if there are none."""
        return float(np.trace(self.matrix) / self.total) if self.total else math.nan


def _pct(x: float) -> float | None:
    return None if not math.isfinite(x) else round(100.0 * x, 4)


def results_table(cm: ConfusionMatrix, class_names: Sequence[str]) -> list[dict]:
    """One row per class (IoU and accuracy in %, None when undefined, point counts), then the mean rows: ``mean
    (<other convention>)`` and last ``mean``, the mIoU by the matrix's own convention (the dataset's official
    one). Class IoUs follow the matrix's convention (an absent class: None, 0 or 100)."""
    if len(class_names) != cm.num_classes:
        raise ValueError(f"{len(class_names)} class names for a {cm.num_classes}-class matrix")
    iou, gt, pred, tp = cm.iou(), cm.gt_counts, cm.pred_counts, np.diag(cm.matrix)
    rows = [{"class": str(name), "train_id": i + 1, "iou": _pct(iou[i]),
             "accuracy": _pct(tp[i] / gt[i]) if gt[i] else None,
             "gt_points": int(gt[i]), "pred_points": int(pred[i]), "tp": int(tp[i])}
            for i, name in enumerate(class_names)]
    other = other_convention(cm.convention)
    for label, convention in ((f"mean ({other})", other), ("mean", cm.convention)):
        rows.append({"class": label, "train_id": None, "iou": _pct(cm.miou(convention)),
                     "accuracy": _pct(cm.accuracy()), "gt_points": cm.total, "pred_points": cm.total,
                     "tp": int(tp.sum())})
    return rows


def results_document(cm: ConfusionMatrix, class_names: Sequence[str]) -> dict[str, Any]:
    """What ``<stem>.json`` holds: ``miou`` (%, the matrix's convention), ``miou_convention``, the mIoU of every
    convention (``miou_absent_as_zero``, ``miou_absent_excluded``, ``miou_absent_as_one``), accuracy, the class
    rows and the confusion matrix."""
    rows = results_table(cm, class_names)
    return {"miou": rows[-1]["iou"], "miou_convention": cm.convention,
            "miou_other_convention": other_convention(cm.convention),
            **{convention_key(c): _pct(v) for c, v in cm.mious().items()},
            "accuracy": rows[-1]["accuracy"], "points": cm.total, "units": "percent",
            "classes": [r for r in rows if r["train_id"] is not None], "confusion_matrix": cm.matrix.tolist()}


def write_results(cm: ConfusionMatrix, class_names: Sequence[str], out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` (`results_table`) and ``<stem>.json`` (`results_document`) atomically under
    ``out_dir``; return both paths."""
    rows = results_table(cm, class_names)
    out = Path(out_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
    write_text_atomic(csv_path, buf.getvalue())
    write_text_atomic(json_path, json.dumps(results_document(cm, class_names), indent=2) + "\n")
    return csv_path, json_path


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def render_results(cm: ConfusionMatrix, class_names: Sequence[str], title: str = "Segmentation results",
                   console: Any = None) -> None:
    """Print the per-class table with rich (IoU %, accuracy %, point counts), the mIoU by the matrix's
    convention and, on the row above it, by the other one."""
    from rich.console import Console
    from rich.table import Table

    other = other_convention(cm.convention)
    table = Table(title=title, caption=f"mIoU: {MIOU_CONVENTIONS[cm.convention]}; the row above it: "
                                       f"{MIOU_CONVENTIONS[other]}")
    for col in ("class", "IoU %", "acc %", "gt points", "pred points"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for r in results_table(cm, class_names):
        if r["train_id"] is None:
            label = f"mIoU ({cm.convention}) / overall" if r["class"] == "mean" else f"mIoU ({other})"
            table.add_row(label, _fmt(r["iou"]), _fmt(r["accuracy"]), f"{r['gt_points']:,}",
                          f"{r['pred_points']:,}", style="bold" if r["class"] == "mean" else "dim")
        else:
            table.add_row(r["class"], _fmt(r["iou"]), _fmt(r["accuracy"]), f"{r['gt_points']:,}",
                          f"{r['pred_points']:,}")
    (console or Console()).print(table)


# ----------------------------------------------------------------------------------------------- robustness


def _check_fractions(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{what}: no values")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{what}: mIoU values must be fractions in [0, 1] (divide percentages by 100), got "
                         f"{arr.tolist()}")
    return arr


def corruption_error(miou_by_severity: Sequence[float], baseline_by_severity: Sequence[float]) -> float:
    """Robo3D CE of one corruption = sum_s (1 - mIoU_s) / sum_s (1 - baseline_s), mIoU as fractions.

    Computed as mean_s (1 - mIoU_s) / mean_s (1 - baseline_s), which is the same when both have one value per
    severity and also accepts a baseline given as its single severity-averaged mIoU (as Robo3D publishes for
    nuScenes-C): then the result equals the per-severity formula exactly.
    """
    m = _check_fractions(miou_by_severity, "corruption mIoU")
    b = _check_fractions(baseline_by_severity, "baseline mIoU")
    if len(b) not in (1, len(m)):
        raise ValueError(f"baseline has {len(b)} severities, the model {len(m)}; give as many or one average")
    if np.mean(1 - b) <= 0:
        raise ValueError("baseline mIoU is 1 for every severity; CE is undefined")
    return float(np.mean(1 - m) / np.mean(1 - b))


def resilience_rate(miou_by_severity: Sequence[float], clean_miou: float) -> float:
    """Robo3D RR of one corruption = sum_s mIoU_s / (S * clean mIoU), S = number of severities (3 in Robo3D)."""
    m = _check_fractions(miou_by_severity, "corruption mIoU")
    clean = float(_check_fractions([clean_miou], "clean mIoU")[0])
    if clean <= 0:
        raise ValueError("clean mIoU is 0; RR is undefined")
    return float(m.sum() / (len(m) * clean))


def mce(results: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]]) -> float:
    """Mean CE over the corruptions in ``results`` (all 8 of `ROBO3D_CORRUPTIONS` for a number comparable to
    papers)."""
    missing = [c for c in results if c not in baseline]
    if missing:
        raise ValueError(f"the baseline has no mIoU for corruption(s) {', '.join(missing)}")
    if not results:
        raise ValueError("no corruption results")
    return float(np.mean([corruption_error(v, baseline[c]) for c, v in results.items()]))


def mrr(results: Mapping[str, Sequence[float]], clean_miou: float) -> float:
    """Mean RR over the corruptions in ``results``."""
    if not results:
        raise ValueError("no corruption results")
    return float(np.mean([resilience_rate(v, clean_miou) for v in results.values()]))


@dataclass(frozen=True)
class RobustnessBaseline:
    """A published baseline: clean mIoU and mIoU per corruption (one value per severity, or one average)."""

    dataset: str
    model: str
    source: str
    clean: float
    miou: dict[str, tuple[float, ...]]


def load_robustness_baseline(dataset: str = "nuscenes", path: str | Path | None = None) -> RobustnessBaseline:
    """The packaged Robo3D MinkUNet-18 baseline of ``dataset`` (``nuscenes`` or ``semantickitti``) as fractions,
    or the same schema read from ``path`` (a YAML file with a top-level key per dataset, mIoU in percent)."""
    if path and not Path(path).is_file():
        raise DataError(path, "robustness baseline file not found")
    packaged = resources.files("seal.evaluation") / "robustness_baselines.yaml"
    text = Path(path).read_text() if path else packaged.read_text()
    spec = yaml.safe_load(text) or {}
    if dataset not in spec:
        raise ValueError(f"no robustness baseline for {dataset!r} in {path or 'the packaged table'}; "
                         f"available: {', '.join(spec) or 'none'}")
    entry = spec[dataset]
    try:
        miou = {str(c): tuple(float(v) / 100.0 for v in vals) for c, vals in entry["miou"].items()}
        clean = float(entry["clean"]) / 100.0
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataError(path or "robustness_baselines.yaml", f"baseline {dataset!r} is malformed: {err}",
                        "each dataset needs clean: <mIoU %> and miou: {corruption: [mIoU %, ...]}") from err
    return RobustnessBaseline(dataset=dataset, model=str(entry.get("model", "")), source=str(entry.get("source", "")),
                              clean=clean, miou=miou)


def robustness_table(results: Mapping[str, Sequence[float]], clean_miou: float | None,
                     baseline: RobustnessBaseline | Mapping[str, Sequence[float]] | None = None) -> list[dict]:
    """Rows per corruption (mIoU light/moderate/heavy and their mean, CE, RR; all in %) and a final ``mean`` row
    holding the mean mIoU, mCE and mRR. ``results`` maps corruption -> mIoU fractions per severity, all by one
    mIoU convention (the dataset's official one for numbers comparable to its baseline); the default baseline
    is the packaged nuScenes-C MinkUNet-18 table. Without ``clean_miou`` the RR columns are None.

    Rows follow `ROBO3D_CORRUPTIONS`; other corruptions (plugins) come after them and stay out of the ``mean``
    row (its ``corruptions`` counts the rows it averages), unless no Robo3D corruption was evaluated."""
    if baseline is None:
        baseline = load_robustness_baseline("nuscenes")
    base = baseline.miou if isinstance(baseline, RobustnessBaseline) else baseline
    robo3d = [c for c in ROBO3D_CORRUPTIONS if c in results]
    order = robo3d + [c for c in results if c not in ROBO3D_CORRUPTIONS]
    averaged = set(robo3d or order)
    rows: list[dict[str, Any]] = []
    means, ces, rrs = [], [], []
    for c in order:
        vals = _check_fractions(results[c], c)
        ce = corruption_error(vals, base[c]) if c in base else None
        rr = resilience_rate(vals, clean_miou) if clean_miou is not None else None
        if c in averaged:
            means.append(float(vals.mean()))
            if rr is not None:
                rrs.append(rr)
            if ce is not None:
                ces.append(ce)
        row: dict[str, Any] = {"corruption": c}
        for s, name in enumerate(SEVERITIES):
            row[name] = _pct(vals[s]) if len(vals) == len(SEVERITIES) else None
        row.update(mean=_pct(float(vals.mean())), ce=None if ce is None else _pct(ce),
                   rr=None if rr is None else _pct(rr))
        rows.append(row)
    rows.append({"corruption": "mean", **dict.fromkeys(SEVERITIES),
                 "mean": _pct(float(np.mean(means))) if means else None,
                 "ce": _pct(float(np.mean(ces))) if ces and len(ces) == len(averaged) else None,
                 "rr": _pct(float(np.mean(rrs))) if rrs else None,
                 "clean": None if clean_miou is None else _pct(clean_miou), "corruptions": len(averaged)})
    return rows
