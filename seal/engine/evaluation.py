"""`seal evaluate`: a trained model on a dataset's split, clean and (with --robustness) under every registered
corruption x 3 severities, applied on the fly or read from a released Robo3D set; the per-frame loop is
`seal.engine.frame_loop`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import torch

from seal.core.atomic import write_text_atomic
from seal.core.config import SEVERITIES, SplitConfig, TrainConfig, VoxelConfig
from seal.core.errors import ConfigError, DataError
from seal.core.schemas import EvaluateSchema
from seal.core.settings import load_config
from seal.data import open_configured
from seal.data.splits import split_indices
from seal.engine.distributed import distributed_run
from seal.engine.frame_loop import evaluate_frames, miou_convention
from seal.evaluation.metrics import (
    MIOU_CONVENTIONS,
    load_robustness_baseline,
    other_convention,
    render_results,
    robustness_table,
    write_results,
)
from seal.models.segmentation import load_model
from seal.robustness import CORRUPTIONS


def run_evaluate(cfg: EvaluateSchema, progress: bool = True) -> dict:
    """Evaluate ``cfg.evaluate.checkpoint`` on ``cfg.data``; returns {"miou": ..., "miou_convention": ...,
    "miou_absent_as_zero": ..., "miou_absent_excluded": ..., "miou_absent_as_one": ..., "robustness": rows or
    None}, ``miou`` (and the robustness rows) by the dataset format's convention.

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
        if checkpoint.is_dir() and isinstance(meta.get("split"), dict) and split == SplitConfig():
            split = SplitConfig(**meta["split"])  # an export (`seal export`) of a probe / fine-tuning run: its split
        elif run_config.is_file():  # the run's own split and label map, unless given here
            trained = load_config(EvaluateSchema, run_config)
            split = trained.split if split == SplitConfig() else split
            if data.label_map is None and trained.data.label_map is not None:
                data = dataclasses.replace(data, label_map=trained.data.label_map)
        dataset = open_configured(data)
        if dataset.label_map.num_classes != meta["num_classes"]:
            raise DataError(dataset.root, f"uses label map {dataset.label_map.name} ({dataset.label_map.num_classes} "
                                          f"classes) but the model predicts {meta['num_classes']} "
                                          f"({meta.get('label_map')})")
        check_class_names(meta, dataset, data.label_map, checkpoint)
        indices = list(range(len(dataset))) if opts.split == "all" else split_indices(dataset, split)[1]
        voxel = VoxelConfig(**meta["voxel"])
        out = Path(opts.out) if opts.out else checkpoint.parent / f"eval-{Path(dataset.root).resolve().name}"
        names = list(dataset.label_map.class_names)
        predictions = Path(opts.save_predictions) if opts.save_predictions else None
        with contextlib.ExitStack() as stack:
            log = None
            if opts.rerun and dist.is_main:  # every process evaluates every frame: one writes the recording
                from seal.viz.rerun_log import recording

                log = stack.enter_context(recording(opts.rerun, dataset))
            cm = evaluate_frames(model, dataset, indices, voxel, dist.device, predictions_dir=predictions,
                                 progress=progress, on_frame=log.log_frame if log else None)
        if log is not None:
            print(f"wrote {opts.rerun} ({log.frames} frames, {log.points} points)")
        write_results(cm, names, out, opts.split)
        if progress:
            render_results(cm, names, title=f"{checkpoint} on {dataset.root} ({opts.split}, {len(indices)} frames)")
        result = {**cm.miou_summary(), "robustness": None}
        if opts.robustness or opts.robustness_root:
            check_clean_miou(cm, out, opts.split, len(indices))
            baseline = Path(opts.baseline) if opts.baseline else None
            released = Path(opts.robustness_root).expanduser() if opts.robustness_root else None
            result["robustness"] = robustness(model, dataset, indices, voxel, dist.device, cm.miou(), baseline, out,
                                              released=released, progress=progress,
                                              clean_other=cm.miou(other_convention(cm.convention)))
    print(f"results: {out}")
    return result


def check_class_names(meta: dict, dataset, label_map: str | None, checkpoint: Path) -> None:
    """Refuse a label map whose classes are not the model's, in the model's order: same count but reordered or
    renamed classes would score the wrong columns. A model.pt from before class names were stored is trusted."""
    trained = meta.get("class_names")
    if not trained:
        return
    names = list(dataset.label_map.class_names)
    for train_id, (want, have) in enumerate(zip(trained, names, strict=False), start=1):
        if want != have:
            source = label_map or f"{dataset.label_map.name} (the dataset's label map)"
            raise DataError(checkpoint, f"predicts train id {train_id} as {want!r} but label map {source} names "
                                        f"it {have!r}", f"evaluate with the label map the model was trained with "
                                                        f"({meta.get('label_map')}): data.label_map=...")


def check_clean_miou(cm, out: Path, split: str, frames: int) -> None:
    """Refuse --robustness before the corrupted evaluations when the clean mIoU is 0 (or undefined): RR divides by
    it, and corrupted copies of data the model scores nothing on would measure nothing. The clean results stay
    written in ``out``."""
    clean = cm.miou()
    if not clean > 0:
        what = "undefined (no labelled point)" if cm.total == 0 else "0"
        raise ConfigError(f"clean mIoU is {what} on the {frames} {split} frame(s): robustness (RR = corrupted / "
                          f"clean mIoU) is undefined, so no corrupted set was evaluated; the clean results are in "
                          f"{out}; check the model and the label map, or evaluate without --robustness")


def robustness(model, dataset, indices, voxel, device: torch.device, clean: float, baseline_path: Path | None,
               out: Path, released: Path | None = None, progress: bool = True,
               clean_other: float | None = None) -> list[dict]:
    """mIoU under every corruption and severity, then CE / RR per corruption and mCE / mRR (Robo3D).

    The returned rows (and ``rows`` of robustness.json) use the dataset format's mIoU convention, as ``clean``
    must; ``rows_other`` of robustness.json holds the same by the other convention (its RR needs
    ``clean_other``, the clean mIoU by that convention).

    The corruptions are applied on the fly to the ``indices`` frames, or, with ``released`` (the root of a Robo3D
    release: SemanticKITTI-C, nuScenes-C), read from its ``<corruption>/<severity>/`` folders through the dataset's
    format (`DatasetFormat.open_released`) and evaluated on all their frames. A corruption the release lacks
    entirely is left out (mCE then covers fewer than the eight); a corruption with missing severities is an error.
    Every registered corruption is run; those outside Robo3D's eight (plugins) have no baseline and are reported
    beside the mCE / mRR, which average the Robo3D ones.
    """
    key = dataset.format.robustness_baseline if dataset.format is not None else None
    if key is None and baseline_path is None:
        raise ConfigError(f"{dataset.root}: its format ({dataset.kind}) names no Robo3D baseline; give "
                          "evaluate.baseline=FILE.yaml")
    baseline = load_robustness_baseline(key or "", baseline_path)
    convention = miou_convention(dataset)
    other = other_convention(convention)
    matrices: dict[str, list] = {}  # corruption -> one confusion matrix per severity
    if released is None:
        for name in CORRUPTIONS:
            matrices[name] = [evaluate_frames(model, dataset, indices, voxel, device, corruption=(name, severity),
                                              desc=f"{name}:{severity}", progress=progress) for severity in SEVERITIES]
    else:
        for name, folders in _released_folders(dataset, released).items():
            corrupted = [dataset.format.open_released(dataset, folder) for folder in folders]
            matrices[name] = [evaluate_frames(model, c, list(range(len(c))), voxel, device,
                                              desc=f"{name}:{f.name}", progress=progress)
                              for c, f in zip(corrupted, folders, strict=True)]
    results = {name: [cm.miou(convention) for cm in cms] for name, cms in matrices.items()}
    results_other = {name: [cm.miou(other) for cm in cms] for name, cms in matrices.items()}
    rows = robustness_table(results, clean, baseline)
    rows_other = robustness_table(results_other, clean_other, baseline)
    write_text_atomic(out / "robustness.json", json.dumps({
        "baseline": baseline.source, "miou_convention": convention, "rows": rows, "other_convention": other,
        "rows_other": rows_other}, indent=2))
    render_robustness(rows, baseline.model, rows_other, convention)
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


def render_robustness(rows: list[dict], baseline_name: str, rows_other: list[dict] | None = None,
                      convention: str | None = None, console=None) -> None:
    """The robustness table by ``convention`` (the dataset's), each number followed in parentheses by the same
    under the other convention when ``rows_other`` is given."""
    from rich.console import Console
    from rich.table import Table

    def fmt(v) -> str:
        return "-" if v is None else f"{v:.1f}"

    def cell(i: int, key: str) -> str:
        text = fmt(rows[i].get(key))
        return text if rows_other is None else f"{text} ({fmt(rows_other[i].get(key))})"

    console = console or Console()
    table = Table(title=f"robustness (mIoU %, CE against {baseline_name}, RR)", title_justify="left")
    for col in ("corruption", *SEVERITIES, "mean", "CE", "RR"):
        table.add_column(col, justify="left" if col == "corruption" else "right")
    for i, row in enumerate(rows):
        table.add_row(row["corruption"], *(cell(i, key) for key in (*SEVERITIES, "mean", "ce", "rr")))
    console.print(table)
    last = len(rows) - 1
    console.print(f"clean mIoU {cell(last, 'clean')}  mCE {cell(last, 'ce')}  mRR {cell(last, 'rr')}")
    if rows[last].get("corruptions", last) < last:
        console.print(f"mean, mCE and mRR over the {rows[last]['corruptions']} Robo3D corruptions; the others have "
                      "no Robo3D baseline")
    if convention is not None:
        note = f"mIoU: {MIOU_CONVENTIONS[convention]}"
        if rows_other is not None:
            note += f"; in parentheses: {MIOU_CONVENTIONS[other_convention(convention)]}"
        console.print(note)
