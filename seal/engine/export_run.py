"""`seal export RUN --out DIR`: a pretraining, probe or fine-tuning run folder becomes a Hugging Face Hub style
folder (`seal.models.hub`) that describes itself: what network, trained on what, by which teacher and objective,
and with which downstream results.

A pretraining run's results are the probe / fine-tuning runs that started from its ``backbone.pt`` (found among
the run folders beside it by the sha256 their ``run.json`` records, plus any named in ``export.results``); a
probe / fine-tuning run's result is its own validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from seal.core.errors import ConfigError, DataError
from seal.engine.model_card import model_card
from seal.engine.runrecord import file_sha256, read_record, run_kind
from seal.models.export import hub_config, load_backbone
from seal.models.hub import BACKBONE, HEAD, write_hub_folder
from seal.models.segmentation import load_model


def _json(path: Path) -> dict[str, Any]:
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def read_run(run_dir: Path) -> dict[str, Any]:
    """What a finished run folder says about itself: kind, run.json, summary.json, config.yaml, val.json."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"seal export {run_dir}: no such run folder; give the folder `seal pretrain`, `seal probe` "
                          "or `seal finetune` wrote")
    kind = run_kind(run_dir)
    if kind not in ("pretrain", "probe", "finetune"):
        raise DataError(run_dir, "is not a seal run folder (no run.json naming pretrain, probe or finetune)",
                        "give the folder `seal pretrain`, `seal probe` or `seal finetune` wrote")
    weights = run_dir / ("backbone.pt" if kind == "pretrain" else "model.pt")
    summary = _json(run_dir / "summary.json")
    if not weights.is_file() or not summary:
        raise DataError(run_dir, f"holds no finished {kind} run (no {weights.name} or summary.json)",
                        "export a run that finished, or finish it first with --resume")
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    return {"dir": run_dir.resolve(), "kind": kind, "weights": weights, "record": read_record(run_dir),
            "summary": summary, "config": config, "val": _json(run_dir / "val.json")}


def downstream_results(run: dict[str, Any], extra: list[Path]) -> list[dict[str, Any]]:
    """The downstream runs whose results the model card shows (see the module docstring)."""
    if run["kind"] != "pretrain":
        return [run]
    digest = file_sha256(run["weights"])
    found = []
    for folder in sorted(p for p in run["dir"].parent.iterdir() if p.is_dir() and p != run["dir"]):
        pretrained = read_record(folder).get("pretrained") or {}
        if pretrained.get("sha256") == digest and (folder / "summary.json").is_file():
            found.append(folder)
    for folder in extra:
        if Path(folder).resolve() not in [f.resolve() for f in found]:
            found.append(Path(folder))
    results = []
    for folder in found:
        result = read_run(folder)
        if result["kind"] == "pretrain":
            raise ConfigError(f"export.results: {folder} is a pretraining run; name probe or finetune runs")
        results.append(result)
    return results


def export_run(run_dir: str | Path, out: str | Path, results: list[str] | None = None) -> Path:
    """Write ``out`` from the run in ``run_dir``; returns ``out``."""
    run = read_run(Path(run_dir))
    found = downstream_results(run, [Path(r) for r in results or []])
    if run["kind"] == "pretrain":
        backbone, meta = load_backbone(run["weights"])
        tensors = {BACKBONE + k: v for k, v in backbone.state_dict().items()}
        head = None
    else:
        model, meta = load_model(run["weights"])
        backbone = model.backbone
        tensors = {BACKBONE + k: v for k, v in backbone.state_dict().items()}
        tensors |= {HEAD + k: v for k, v in model.classifier.state_dict().items()}
        head = {"num_classes": meta["num_classes"], "label_map": meta.get("label_map"),
                "class_names": meta.get("class_names"), "mode": meta.get("mode"), "fraction": meta.get("fraction"),
                "split": run["config"].get("split")}  # what `seal evaluate DIR DATA` evaluates by default
    source = {"kind": run["kind"], "run": run["dir"].name, "weights": run["weights"].name,
              "weights_sha256": file_sha256(run["weights"])}
    config = hub_config(backbone, meta["voxel"], source=source, **({"head": head} if head else {}))
    card = model_card(run, found, config)
    return write_hub_folder(Path(out), config, tensors, card)


__all__ = ["downstream_results", "export_run", "read_run"]
