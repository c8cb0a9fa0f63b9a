"""`seal evaluate`: a trained model on a dataset's split, clean and (with --robustness) under 8 x 3 corruptions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from seal.atomic import write_text_atomic
from seal.config import load_config
from seal.data import open_dataset
from seal.downstream.config import DownstreamConfig
from seal.downstream.evaluate import evaluate_frames
from seal.downstream.frames import split_indices
from seal.downstream.model import load_model
from seal.engine.distributed import init_distributed
from seal.errors import DataError
from seal.evaluation import (
    CORRUPTIONS,
    SEVERITIES,
    load_robustness_baseline,
    render_results,
    robustness_table,
    write_results,
)
from seal.pretrain.data import VoxelSpec


def run_evaluate(args: argparse.Namespace) -> dict:
    """Evaluate ``args.checkpoint`` on ``args.path``; returns {"miou": ..., "robustness": rows or None}."""
    model, meta = load_model(args.checkpoint)
    device = init_distributed("auto").device
    model.to(device)
    run_config = args.checkpoint.parent / "config.yaml"
    cfg = load_config(DownstreamConfig, run_config if run_config.is_file() else None, list(args.overrides))
    options = {"label_map": cfg.data.label_map} if cfg.data.label_map else {}
    dataset = open_dataset(args.path, kind=args.kind or cfg.data.kind, **options)
    if dataset.label_map.num_classes != meta["num_classes"]:
        raise DataError(args.path, f"uses label map {dataset.label_map.name} ({dataset.label_map.num_classes} "
                                   f"classes) but the model predicts {meta['num_classes']} ({meta.get('label_map')})")
    indices = list(range(len(dataset))) if args.split == "all" else split_indices(dataset, cfg.split)[1]
    voxel = VoxelSpec(**meta["voxel"])
    out = args.out or args.checkpoint.parent / f"eval-{Path(args.path).resolve().name}"
    names = list(dataset.label_map.class_names)
    cm = evaluate_frames(model, dataset, indices, voxel, device, predictions_dir=args.save_predictions)
    write_results(cm, names, out, f"{args.split}")
    render_results(cm, names, title=f"{args.checkpoint} on {args.path} ({args.split}, {len(indices)} frames)")
    result = {"miou": cm.miou(), "robustness": None}
    if args.robustness:
        result["robustness"] = robustness(model, dataset, indices, voxel, device, cm.miou(), args.baseline, out)
    print(f"results: {out}")
    return result


def robustness(model, dataset, indices, voxel, device: torch.device, clean: float, baseline_path: Path | None,
               out: Path) -> list[dict]:
    """mIoU under every corruption and severity, then CE / RR per corruption and mCE / mRR (Robo3D)."""
    results = {}
    for name in CORRUPTIONS:
        results[name] = [evaluate_frames(model, dataset, indices, voxel, device, corruption=(name, severity),
                                         desc=f"{name}:{severity}").miou() for severity in SEVERITIES]
    baseline = load_robustness_baseline("nuscenes" if dataset.kind == "nuscenes" else "semantickitti", baseline_path)
    rows = robustness_table(results, clean, baseline)
    write_text_atomic(out / "robustness.json", json.dumps({"baseline": baseline.source, "rows": rows}, indent=2))
    render_robustness(rows, baseline.model)
    return rows


def render_robustness(rows: list[dict], baseline_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v) -> str:
        return "-" if v is None else f"{v:.1f}"

    table = Table(title=f"robustness (mIoU %, CE against {baseline_name}, RR)", title_justify="left")
    for col in ("corruption", *SEVERITIES, "mean", "CE", "RR"):
        table.add_column(col, justify="left" if col == "corruption" else "right")
    for row in rows:
        table.add_row(row["corruption"], *(fmt(row[s]) for s in SEVERITIES), fmt(row["mean"]), fmt(row["ce"]),
                      fmt(row["rr"]))
    Console().print(table)
    last = rows[-1]
    Console().print(f"clean mIoU {fmt(last.get('clean'))}  mCE {fmt(last['ce'])}  mRR {fmt(last['rr'])}")
