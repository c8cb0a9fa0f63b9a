"""The model card (README.md) of an exported backbone, written from the run's own records: a Hugging Face Hub YAML
header, then what was trained on what, by which teacher and objective, its downstream results, and how to load it.
Every fact comes from the run folder; what seal cannot know (the licence) is left for the user, marked."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from seal.evaluation.metrics import convention_key

OBJECTIVE_TERMS = ("vfm", "tmp", "p2s", "ppkt", "scalr")
TERM_NAMES = {"vfm": "L_vfm (superpixel-superpoint contrast)", "tmp": "L_tmp (temporal superpoint consistency)",
              "p2s": "L_p2s (point to segment)", "ppkt": "PPKT point-pixel InfoNCE",
              "scalr": "ScaLR feature regression"}


def _get(tree: dict[str, Any], dotted: str, default: Any = None) -> Any:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return default
        tree = tree[key]
    return tree


def _datasets(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in record.get("data", []) if isinstance(d, dict)]


def _dataset_line(d: dict[str, Any]) -> str:
    return (f"`{Path(str(d.get('root', '?'))).name}` ({d.get('format', '?')}, {d.get('frames', '?')} frames, "
            f"{d.get('first', '?')} .. {d.get('last', '?')})")


def _objective(weights: dict[str, Any]) -> str:
    terms = [f"{weights[t]:g} x {TERM_NAMES[t]}" for t in OBJECTIVE_TERMS if weights.get(t)]
    extra = f"; temperature {weights['tau']:g}" if "tau" in weights else ""
    return (" + ".join(terms) or "no distillation term") + extra


def _teacher(config: dict[str, Any], summary: dict[str, Any]) -> str:
    weights = _get(config, "teacher.weights")
    name = f"`{_get(config, 'teacher.backbone', '?')}`"
    if weights:
        return f"{name}, weights file `{Path(str(weights)).name}`"
    if summary.get("teacher_pretrained") is False and "oracle" not in name:
        return f"{name}, no weights file: randomly initialised (no foundation-model knowledge to distil)"
    return f"{name}: {summary.get('teacher', 'no weights file')}"


def _pretraining_rows(run: dict[str, Any]) -> list[tuple[str, str]]:
    config, summary = run["config"], run["summary"]
    rows = [("data", "<br>".join(_dataset_line(d) for d in _datasets(run["record"])) or "?")]
    for part in summary.get("datasets", []) or []:  # a mixture: its per-dataset draws
        rows.append((f"  {part.get('name', '?')}", f"weight {part.get('weight', '?')}, "
                                                   f"{part.get('samples_seen', '?')} samples seen"))
    rows += [("2D teacher", _teacher(config, summary)),
             ("superpixels", f"`{_get(config, 'superpixels.method', '?')}`"),
             ("objective", _objective(summary.get("loss_weights", {}))),
             ("training", f"{summary.get('steps', '?')} steps, {summary.get('epochs_completed', '?')} epochs, batch "
                          f"{_get(config, 'train.batch_size', '?')}, {_get(config, 'optim.name', '?')} lr "
                          f"{_get(config, 'optim.lr', '?')} ({_get(config, 'optim.schedule', '?')}), seed "
                          f"{_get(config, 'train.seed', '?')}, {summary.get('seconds', '?')} s on "
                          f"{summary.get('device', '?')} x {summary.get('processes', 1)}"),
             ("loss", f"{_get(summary, 'loss_first.total', float('nan')):.4g} -> "
                      f"{_get(summary, 'loss_last.total', float('nan')):.4g} (first / last logged total)")]
    return rows


def _downstream_rows(run: dict[str, Any]) -> list[tuple[str, str]]:
    summary, record = run["summary"], run["record"]
    pretrained = record.get("pretrained") or {}
    start = (f"`{Path(str(pretrained.get('path', '?'))).name}` (sha256 {str(pretrained.get('sha256'))[:12]}...)"
             if pretrained else "random initialisation")
    return [("data", "<br>".join(_dataset_line(d) for d in _datasets(record)) or "?"),
            ("task", f"{summary.get('mode', run['kind'])} on {summary.get('fraction', '?')} % of the training frames, "
                     f"label map `{summary.get('label_map', '?')}` ({len(summary.get('class_names', []))} classes)"),
            ("started from", start),
            ("training", f"{summary.get('steps', '?')} steps, {summary.get('train_seconds', '?')} s, seed "
                         f"{_get(run['config'], 'train.seed', '?')}")]


def _results(results: list[dict[str, Any]]) -> list[str]:
    if not results:
        return ["No probe or fine-tuning run of this backbone was found beside its run folder (name them with "
                "`export.results=[RUN,...]`)."]
    lines = ["| run | task | data | train / val frames | mIoU % | other convention | accuracy % |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        s, v = r["summary"], r["val"]
        data = ", ".join(f"`{Path(str(d.get('root', '?'))).name}`" for d in _datasets(r["record"]))
        other = v.get("miou_other_convention", "")
        other_miou = v.get(convention_key(other), float("nan")) if other else float("nan")
        lines.append(f"| `{r['dir'].name}` | {s.get('mode', r['kind'])} {s.get('fraction', '?')} % | {data} | "
                     f"{s.get('train_frames', '?')} / {s.get('val_frames', '?')} | {v.get('miou', float('nan')):.1f} "
                     f"({v.get('miou_convention', '?')}) | {other_miou:.1f} ({other}) | "
                     f"{v.get('accuracy', float('nan')):.1f} |")
    classed = [r for r in results if r["val"].get("classes")][:4]
    if classed:
        lines += ["", "Per-class IoU % on the validation frames (`-`: the class is absent from them):", "",
                  "| class | " + " | ".join(f"`{r['dir'].name}`" for r in classed) + " |",
                  "|---|" + "---|" * len(classed)]
        for i, entry in enumerate(classed[0]["val"]["classes"]):
            cells = []
            for r in classed:
                c = r["val"]["classes"][i] if i < len(r["val"]["classes"]) else {}
                cells.append("-" if not c.get("gt_points") else f"{c.get('iou', float('nan')):.1f}")
            lines.append(f"| {entry.get('class', '?')} | " + " | ".join(cells) + " |")
    return lines


def model_card(run: dict[str, Any], results: list[dict[str, Any]], config: dict[str, Any]) -> str:
    """The README.md of an export of ``run`` (see `seal.engine.export_run.read_run`) with ``results``."""
    kind, backbone = run["kind"], config["backbone"]
    formats = sorted({str(d.get("format")) for d in _datasets(run["record"]) if d.get("format")})
    title = {"pretrain": "pretrained without labels", "probe": "linear probe", "finetune": "fine-tuned"}[kind]
    head = config.get("head")
    shape = (f"`{backbone.get('name')}`"
             + (f" {_get(backbone, 'waffleiron.shape')}" if backbone.get("name") == "waffleiron" else
                f", planes {backbone.get('planes')}, layers {backbone.get('layers')}")
             + f"; {config['num_parameters'] / 1e6:.2f} M parameters, {config['feature_dim']} output channels")
    voxel = config["voxel"]
    rows = [("backbone", shape),
            ("input", f"{voxel.get('size')} m {voxel.get('mode')} voxels (angle bin {voxel.get('angle_bin_deg')} deg),"
                      f" {backbone.get('in_channels')} point feature channel(s)")]
    rows += _pretraining_rows(run) if kind == "pretrain" else _downstream_rows(run)
    if head:
        rows.append(("head", f"linear classifier over {head['num_classes']} classes of `{head.get('label_map')}`"))
    rows.append(("exported", f"{_dt.date.today().isoformat()} by seal {config['seal_version']} from run folder "
                             f"`{run['dir'].name}` ({run['weights'].name}, sha256 "
                             f"{config['source']['weights_sha256'][:12]}...)"))
    tags = ["lidar", "point-cloud", "semantic-segmentation", "self-supervised", "image-to-lidar-distillation", "seal"]
    lines = ["---", "library_name: seal",
             "license: unknown  # set before publishing: the licences of the data and the teacher's weights bind it",
             "tags:", *[f"- {t}" for t in tags], "datasets:", *[f"- {f}" for f in formats or ["unknown"]], "---", "",
             f"# {backbone.get('name')} LiDAR backbone, {title} (seal)", "",
             "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
             "## Results", "", *_results(results), "",
             "## Use", "", "```python", "import seal", "", 'backbone, meta = seal.load_backbone("path/to/this/folder")',
             'frame = seal.open_dataset("path/to/dataset")[0]  # any format seal reads',
             'features = seal.point_features(backbone, frame, seal.VoxelConfig(**meta["voxel"]))  # [points, channels]',
             "```", "",
             "```bash", "seal probe DATA --pretrained path/to/this/folder    # or seal finetune",
             *(["seal evaluate DATA --checkpoint path/to/this/folder    # the classifier is included"] if head else []),
             "```", "",
             "## Files", "",
             "- `config.json`: the backbone's shape and voxelisation (what to build), the seal version, the source run",
             "- `model.safetensors`: the weights (`backbone.*`" + (", `classifier.*`" if head else "")
             + "), no pickle",
             "- `README.md`: this card, written by `seal export` from the run's records", "",
             "## Licence", "",
             "Not set by seal: fill in the `license` field above. A distilled backbone inherits the terms of its "
             "training data and of the teacher's weights.", ""]
    return "\n".join(lines)


__all__ = ["model_card"]
