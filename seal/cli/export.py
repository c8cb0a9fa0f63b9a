"""`seal export RUN --out DIR`: a run folder as a Hugging Face Hub style folder (config.json, model.safetensors,
README.md model card) that `seal.load_backbone` and every `--pretrained` option read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seal.core.errors import ConfigError

__all__ = ["ExportOptions", "ExportSchema", "run_export"]


@dataclass
class ExportOptions:
    """`seal export`."""

    run: str = ""                  # the run folder of `seal pretrain`, `seal probe` or `seal finetune`
    out: str = ""                  # the folder to write (new, empty, or an earlier export, which is replaced)
    results: list[str] = field(default_factory=list)  # more probe / finetune runs for the model card's results


@dataclass
class ExportSchema:
    export: ExportOptions = field(default_factory=ExportOptions)  # which run, where to


def run_export(cfg: ExportSchema) -> int:
    from seal.engine.export_run import export_run

    opts = cfg.export
    if not opts.run or not opts.out:
        raise ConfigError("seal export needs the run folder and --out DIR (export.run, export.out)")
    out = export_run(Path(opts.run), Path(opts.out), list(opts.results))
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    print(f"wrote {out}: " + ", ".join(f"{name} ({size / 1e6:.2f} MB)" if size > 1e5 else f"{name} ({size} B)"
                                       for name, size in sizes.items()))
    return 0
