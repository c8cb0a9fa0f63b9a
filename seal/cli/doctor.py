"""`seal doctor`: what a bug report needs and what a user checks first, in one table.

Exit status 0 when a pretraining run could start here: torch imports, a sparse engine that runs on this
machine's device imports, and every weights file the configuration names exists.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from seal.core.schemas import PretrainSchema

OK, WARN, FAIL = "ok", "note", "FAIL"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _torch_rows() -> tuple[list[tuple[str, str, str]], bool]:
    rows = []
    try:
        import torch
    except ImportError as err:
        return [("torch", FAIL, f"not importable: {err}")], False
    cuda = torch.version.cuda or "none (CPU build)"
    rows.append(("torch", OK, f"{torch.__version__}, built with CUDA {cuda}"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            rows.append((f"GPU {i}", OK, f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
                                          f"compute {props.major}.{props.minor}"))
    else:
        rows.append(("GPU", WARN, "no CUDA device visible: runs use the CPU"))
    rows.append(("threads", OK, f"torch {torch.get_num_threads()}, CPUs {os.cpu_count()}, OMP_NUM_THREADS="
                                f"{os.environ.get('OMP_NUM_THREADS', 'unset')}"))
    return rows, True


def _engine_rows(cfg: PretrainSchema) -> tuple[list[tuple[str, str, str]], bool]:
    import torch

    from seal.models.sparse import ENGINES, select_engine

    device = "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu"
    rows = []
    for name in ENGINES.names():  # the registered engines (plugins included), installed or not
        try:
            version = ENGINES.get(name).version()
        except Exception as err:  # a plugin that does not load is a finding, not a crash
            rows.append((name, FAIL, str(err).splitlines()[0]))
            continue
        rows.append((name, OK if version else WARN, version or "not installed"))
    rows.append(("triton", OK if _version("triton") else WARN, _version("triton") or "not installed"))
    try:
        engine = select_engine(cfg.model.engine, device)
        from seal.models.sparse import spconv

        spconv()  # import it for real: a broken build fails here, not in the first training step
        rows.append(("sparse engine", OK, f"{engine} on {device} (model.engine={cfg.model.engine})"))
        return rows, True
    except Exception as err:  # any import failure of a compiled extension is a finding, not a crash
        hint = ENGINES.get(cfg.model.engine if cfg.model.engine in ENGINES else "spconv").install
        rows.append(("sparse engine", FAIL, f"{str(err).splitlines()[0]} ({hint})"))
        return rows, False


def _extras_rows() -> list[tuple[str, str, str]]:
    rows = []
    for dist, what in (("segment-anything", "SAM superpixels [sam]"), ("transformers", "HF superpixels [hf]"),
                       ("timm", "ViT teachers"), ("torchvision", "ResNet teachers"), ("omegaconf", "configs"),
                       ("tensorboard", "training curves"), ("rerun-sdk", "3D recordings [viewer]")):
        version = _version(dist)
        rows.append((dist, OK if version else WARN, f"{version} ({what})" if version else f"not installed ({what})"))
    return rows


def _plugin_rows() -> list[tuple[str, str, str]]:
    """One row per component a third-party package registers (read from its metadata, not imported)."""
    from seal.cli.components import all_kinds

    rows = []
    for group, registry in all_kinds().items():
        for name in registry.names():
            source = registry.source(name)
            if source != "seal":
                rows.append((f"plugin {group}", OK, f"{name} from {source}"))
    return rows or [("plugins", OK, "none installed (entry-point groups seal.formats, seal.teachers, ...)")]


def _weights_rows(cfg: PretrainSchema) -> tuple[list[tuple[str, str, str]], bool]:
    rows, ok = [], True
    named = {"teacher.weights": cfg.teacher.weights, "superpixels.sam.checkpoint": cfg.superpixels.sam.checkpoint,
             "superpixels.hf.model_dir": cfg.superpixels.hf.model_dir, "model.pretrained": cfg.model.pretrained}
    for key, value in named.items():
        if not value:
            note = "not set: the teacher is randomly initialised" if key == "teacher.weights" else "not set"
            rows.append((key, WARN if key == "teacher.weights" else OK, note))
            continue
        exists = Path(value).expanduser().exists()
        ok &= exists
        rows.append((key, OK if exists else FAIL, f"{value} {'exists' if exists else 'NOT FOUND'}"))
    return rows, ok


def run_doctor(cfg: PretrainSchema) -> int:
    """Print the table; 0 when a pretraining run could start, 1 otherwise."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from seal import __version__

    rows = [("seal", OK, __version__), ("python", OK, f"{sys.version.split()[0]} ({platform.platform()})")]
    torch_rows, ready = _torch_rows()
    rows += torch_rows
    if ready:
        engine_rows, engine_ok = _engine_rows(cfg)
        rows += engine_rows
        ready &= engine_ok
    rows += _extras_rows()
    rows += _plugin_rows()
    weights_rows, weights_ok = _weights_rows(cfg)
    rows += weights_rows
    ready &= weights_ok
    table = Table(title="seal doctor", title_justify="left")
    for column in ("check", "status", "details"):
        table.add_column(column)
    for name, status, details in rows:
        style = {"FAIL": "bold red", "note": "yellow"}.get(status, "green")
        table.add_row(name, f"[{style}]{status}[/{style}]", escape(details))
    console = Console()
    console.print(table)
    console.print("a pretraining run can start here" if ready else "[bold red]a pretraining run cannot start here: "
                  "fix the FAIL rows[/bold red]")
    return 0 if ready else 1
