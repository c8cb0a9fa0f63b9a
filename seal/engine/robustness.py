"""`seal evaluate`: a trained model on a dataset's split, clean and (with --robustness) under 8 x 3 corruptions."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from seal.core.atomic import write_text_atomic
from seal.core.config import CORRUPTIONS, SEVERITIES, SplitConfig, TrainConfig, VoxelConfig
from seal.core.errors import ConfigError, DataError
from seal.core.schemas import EvaluateSchema
from seal.core.settings import load_config
from seal.data import open_configured
from seal.engine.distributed import distributed_run
from seal.engine.evaluate import evaluate_frames
from seal.evaluation.metrics import (
    load_robustness_baseline,
    render_results,
    robustness_table,
    write_results,
)
from seal.models.segmentation import load_model
from seal.samples.frames import split_indices


def run_evaluate(cfg: EvaluateSchema, progress: bool = True) -> dict:
    """Evaluate ``cfg.evaluate.checkpoint`` on ``cfg.data``; returns {"miou": ..., "robustness": rows or None}.

    The split comes from the checkpoint's run folder (its config.yaml) unless ``split.*`` keys are given."""
    opts = cfg.evaluate
    if not opts.checkpoint:
        raise ConfigError("evaluate.checkpoint is not set: give the model.pt of `seal probe` / `seal finetune`")
    checkpoint = Path(opts.checkpoint)
    model, meta = load_model(checkpoint)
    with distributed_run(TrainConfig(), cfg.model.engine) as dist:
        model.to(dist.device)
        run_config = checkpoint.parent / "config.yaml"
        split, data = cfg.split, cfg.data
        if run_config.is_file():  # the run's own split and label map, unless given here
            trained = load_config(EvaluateSchema, run_config)
            split = trained.split if split == SplitConfig() else split
            if data.label_map is None and trained.data.label_map is not None:
                data = dataclasses.replace(data, label_map=trained.data.label_map)
        dataset = open_configured(data)
        if dataset.label_map.num_classes != meta["num_classes"]:
            raise DataError(dataset.root, f"uses label map {dataset.label_map.name} ({dataset.label_map.num_classes} "
                                          f"classes) but the model predicts {meta['num_classes']} "
                                          f"({meta.get('label_map')})")
        indices = list(range(len(dataset))) if opts.split == "all" else split_indices(dataset, split)[1]
        voxel = VoxelConfig(**meta["voxel"])
        out = Path(opts.out) if opts.out else checkpoint.parent / f"eval-{Path(dataset.root).resolve().name}"
        names = list(dataset.label_map.class_names)
        predictions = Path(opts.save_predictions) if opts.save_predictions else None
        cm = evaluate_frames(model, dataset, indices, voxel, dist.device, predictions_dir=predictions,
                             progress=progress)
        write_results(cm, names, out, opts.split)
        if progress:
            render_results(cm, names, title=f"{checkpoint} on {dataset.root} ({opts.split}, {len(indices)} frames)")
        result = {"miou": cm.miou(), "robustness": None}
        if opts.robustness or opts.robustness_root:
            baseline = Path(opts.baseline) if opts.baseline else None
            released = Path(opts.robustness_root).expanduser() if opts.robustness_root else None
            result["robustness"] = robustness(model, dataset, indices, voxel, dist.device, cm.miou(), baseline, out,
                                              released=released, progress=progress)
    print(f"results: {out}")
    return result


def robustness(model, dataset, indices, voxel, device: torch.device, clean: float, baseline_path: Path | None,
               out: Path, released: Path | None = None, progress: bool = True) -> list[dict]:
    """mIoU under every corruption and severity, then CE / RR per corruption and mCE / mRR (Robo3D).

    The corruptions are applied on the fly to the ``indices`` frames, or, with ``released`` (the root of a Robo3D
    release: SemanticKITTI-C, nuScenes-C), read from its ``<corruption>/<severity>/`` folders through the dataset's
    format (`DatasetFormat.open_released`) and evaluated on all their frames. A corruption the release lacks
    entirely is left out (mCE then covers fewer than the eight); a corruption with missing severities is an error.
    """
    key = dataset.format.robustness_baseline if dataset.format is not None else None
    if key is None and baseline_path is None:
        raise ConfigError(f"{dataset.root}: its format ({dataset.kind}) names no Robo3D baseline; give "
                          "evaluate.baseline=FILE.yaml")
    baseline = load_robustness_baseline(key or "", baseline_path)
    results = {}
    if released is None:
        for name in CORRUPTIONS:
            results[name] = [evaluate_frames(model, dataset, indices, voxel, device, corruption=(name, severity),
                                             desc=f"{name}:{severity}", progress=progress).miou()
                             for severity in SEVERITIES]
    else:
        for name, folders in _released_folders(dataset, released).items():
            scores = []
            for folder in folders:
                corrupted = dataset.format.open_released(dataset, folder)
                scores.append(evaluate_frames(model, corrupted, list(range(len(corrupted))), voxel, device,
                                              desc=f"{name}:{folder.name}", progress=progress).miou())
            results[name] = scores
    rows = robustness_table(results, clean, baseline)
    write_text_atomic(out / "robustness.json", json.dumps({"baseline": baseline.source, "rows": rows}, indent=2))
    render_robustness(rows, baseline.model)
    return rows


def _released_folders(dataset, released: Path) -> dict[str, list[Path]]:
    """{corruption: its three severity folders} of a Robo3D release, checked before anything is evaluated."""
    if dataset.format is None:
        raise ConfigError(f"{dataset.root}: a dataset built in memory has no format to read {released} with")
    if not released.is_dir():
        raise DataError(released, "evaluate.robustness_root folder not found")
    out = {}
    for name in CORRUPTIONS:
        folders = [released / name / severity for severity in SEVERITIES]
        present = [f for f in folders if f.is_dir()]
        if present and len(present) < len(folders):
            missing = next(f for f in folders if not f.is_dir())
            raise DataError(missing, f"severity folder missing: {released} has {len(present)} of the 3 severities "
                                     f"of {name}", f"expected {name}/{{{','.join(SEVERITIES)}}}/")
        if present:
            out[name] = folders
    if not out:
        raise DataError(released, "holds no <corruption>/<severity>/ folder of a Robo3D release",
                        f"corruptions: {', '.join(CORRUPTIONS)}; severities: {', '.join(SEVERITIES)}")
    return out


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
