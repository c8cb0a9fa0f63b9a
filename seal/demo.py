"""`seal demo`: the whole pipeline on built-in synthetic sequences, on a CPU, in minutes.

generate -> SLIC superpixels -> superpoints -> pretrain (full Seal, and L_vfm only) -> linear probe (also from
random initialisation) -> evaluate, on several seeds; then a comparison table and pictures. With ``--ablation``
the same protocol runs the distillation family and Seal's ablations (`ABLATION`) and draws a bar chart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from seal.core.atomic import write_text_atomic
from seal.core.schemas import DownstreamSchema, PretrainSchema
from seal.core.settings import load_config
from seal.evaluation.metrics import DEFAULT_CONVENTION, MIOU_CONVENTIONS, convention_key, other_convention

SEAL = "Seal (L_vfm + L_tmp + L_p2s)"
SETTINGS: dict[str, list[str] | None] = {  # name -> pretraining overrides of the tiny preset (None = no pretraining)
    "random init": None,
    "L_vfm only": ["loss.tmp=0", "loss.p2s=0"],
    SEAL: [],
}
ONLY = ["loss.vfm=0", "loss.tmp=0", "loss.p2s=0"]  # switch Seal's terms off, then one objective on
PPKT, SCALR = [*ONLY, "loss.ppkt=1"], [*ONLY, "loss.scalr=1"]
WAFFLEIRON = ["model.backbone.name=waffleiron", "model.backbone.waffleiron.shape=tiny"]
ORACLE = ["teacher.backbone=oracle", "teacher.model_kwargs={}"]  # controls: the renderer's true classes
DEGRADED = ["teacher.backbone=oracle_degraded", "teacher.model_kwargs={}"]
OSEG = ["superpixels.method=oracle"]
SUPERVISED = "3D labels (supervised fine-tuning), then linear probe"  # the ceiling of a linear probe
ABLATION: dict[str, list[str] | None] = {
    "random init": None,
    "PPKT (point-pixel InfoNCE)": PPKT,
    "SLidR (L_vfm, SLIC)": ["loss.tmp=0", "loss.p2s=0"],
    "ScaLR (feature regression)": SCALR,
    "Seal, SLIC segments": [],
    "Seal, oracle segments": OSEG,
    "Seal without L_tmp": ["loss.tmp=0"],
    "Seal without L_p2s": ["loss.p2s=0"],
    "Seal, WaffleIron backbone (tiny)": WAFFLEIRON,
    "PPKT, oracle teacher": [*PPKT, *ORACLE],
    "ScaLR, oracle teacher": [*SCALR, *ORACLE],
    "Seal, oracle teacher": ORACLE,
    "Seal, oracle teacher + oracle segments": [*ORACLE, *OSEG],
    "PPKT, degraded oracle teacher": [*PPKT, *DEGRADED],
    "ScaLR, degraded oracle teacher": [*SCALR, *DEGRADED],
    "Seal, degraded oracle teacher": DEGRADED,
    "Seal, degraded oracle teacher + oracle segments": [*DEGRADED, *OSEG],
    SUPERVISED: None,
}
TEACHER_ROWS = {"oracle": "2D oracle teacher alone on the paired points",  # its own mIoU, no 3D network
                "oracle_degraded": "2D degraded oracle teacher alone on the paired points"}
# the sweep: the oracle teacher's class confusion (then the degraded oracle) for ScaLR and Seal
SWEEP_LEVELS = {"confusion 0": ("oracle", {}), "confusion 0.3": ("oracle", {"confusion": 0.3}),
                "confusion 0.6": ("oracle", {"confusion": 0.6}), "degraded": ("oracle_degraded", {})}
SWEEP_OBJECTIVES = {"ScaLR": SCALR, "Seal": []}
SWEEP_ANCHOR = "random ViT"  # each objective with the random teacher: what distilling no knowledge gives (a line)


def teacher_of(overrides: list[str] | None) -> str:
    """Which 2D teacher a row distils (what the table says beside it)."""
    if overrides is None:
        return "-"
    named = [o.split("=", 1)[1] for o in overrides if o.startswith("teacher.backbone=")]
    return named[-1] if named else "random ViT"


@dataclass
class DemoPlan:
    """Sizes of the demo; `quick` shrinks everything for tests."""

    sequences: int = 5             # the last one is the validation sequence
    frames: int = 16
    cameras: int = 1               # the front camera sees ~13% of the points; 6 = the nuScenes ring (360 degrees)
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    pretrain_epochs: int = 3
    probe_epochs: int = 15
    data_seed: int = 100

    @classmethod
    def quick(cls) -> DemoPlan:
        return cls(sequences=3, frames=5, seeds=[0, 1], pretrain_epochs=1, probe_epochs=3)


def _preset(name: str) -> Path:
    return Path(str(resources.files("seal") / "configs" / name))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


MARKER = ".seal-demo"  # a folder the demo made: a rerun replaces its runs (a run folder refuses a second writer)


def _claim(out: Path) -> None:
    """Make ``out`` the demo's: new, empty, or an earlier demo's (its runs are removed, the data kept as it is
    regenerated identically); any other non-empty folder is refused in one line."""
    import shutil

    from seal.core.errors import ConfigError

    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"demo.out={out}: the folder holds files that are not an earlier seal demo's; choose a new "
                          "or empty folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by seal demo: a rerun replaces runs/\n")
    if (out / "runs").is_dir():
        shutil.rmtree(out / "runs")


def sweep_settings() -> dict[str, list[str]]:
    """The sweep's rows: each objective at each teacher quality level."""
    out = {}
    for objective, overrides in SWEEP_OBJECTIVES.items():
        out[f"{objective}, {SWEEP_ANCHOR}"] = list(overrides)
        for level, (teacher, knobs) in SWEEP_LEVELS.items():
            kwargs = "{" + ", ".join(f"{k}: {v}" for k, v in knobs.items()) + "}"
            out[f"{objective}, {level}"] = [*overrides, f"teacher.backbone={teacher}", f"teacher.model_kwargs={kwargs}"]
    return out


def run_demo(out: Path, plan: DemoPlan | None = None, progress: bool = True, ablation: bool = False,
             sweep: bool = False) -> dict:
    """Run the demo (or, with ``ablation``, the ablation table; with ``sweep``, the teacher-quality sweep) into
    ``out``; returns the results (also written to ``out/{demo,ablation,sweep}_results.json``)."""
    from seal.demo_references import supervised_backbone, sweep_chart, teacher_2d_miou
    from seal.engine.downstream import run_downstream
    from seal.engine.pretrain import pretrain
    from seal.synth import generate_dataset

    plan = plan or (DemoPlan(seeds=[0]) if sweep or ablation else DemoPlan())
    settings = sweep_settings() if sweep else ABLATION if ablation else SETTINGS
    start = time.perf_counter()
    _claim(out)
    needs_oracle = any("oracle" in item for o in settings.values() for item in (o or []))
    data = generate_dataset(out / "data", sequences=plan.sequences, frames=plan.frames, seed=plan.data_seed,
                            cameras=plan.cameras, progress=progress, segments=needs_oracle)
    names = [f"{i:02d}" for i in range(plan.sequences)]
    train, val = names[:-1], names[-1:]
    seq_list = "[" + ",".join(f'"{n}"' for n in train) + "]"
    val_list = "[" + ",".join(f'"{n}"' for n in val) + "]"
    results: dict[str, dict[int, dict]] = {name: {} for name in settings}
    runs: dict[str, dict[int, Path]] = {name: {} for name in settings}
    seconds = dict.fromkeys(settings, 0.0)
    for seed in plan.seeds:
        for setting, overrides in settings.items():
            began, backbone, tag = time.perf_counter(), None, _slug(setting)
            if setting == SUPERVISED:
                backbone = supervised_backbone(data, seq_list, val_list, seed, plan.probe_epochs,
                                               out / "runs" / f"supervised-s{seed}", _preset("downstream_tiny.yaml"),
                                               progress)
            elif overrides is not None:
                cfg = load_config(PretrainSchema, _preset("pretrain_tiny.yaml"), [
                    f"data.path={data}", f"data.sequences={seq_list}", f"train.seed={seed}",
                    f"optim.epochs={plan.pretrain_epochs}", f"train.run_dir={out / 'runs' / f'pretrain-{tag}-s{seed}'}",
                    *overrides])
                backbone = pretrain(cfg) / "backbone.pt"
            cfg = load_config(DownstreamSchema, _preset("downstream_tiny.yaml"), [
                f"data.path={data}", f"split.train_sequences={seq_list}", f"split.val_sequences={val_list}",
                f"train.seed={seed}", f"optim.epochs={plan.probe_epochs}",
                f"train.run_dir={out / 'runs' / f'probe-{tag}-s{seed}'}"]
                + ([f"model.pretrained={backbone}"] if backbone else []))
            run = run_downstream(cfg, "probe", progress=progress)
            results[setting][seed] = json.loads((run / "summary.json").read_text())  # miou + the conventions
            runs[setting][seed] = run
            seconds[setting] += time.perf_counter() - began
    summary = _summarise(results, plan, time.perf_counter() - start)
    for row in summary["rows"]:
        row["seconds"] = round(seconds[row["setting"]], 1)
        row["teacher"] = "3D labels" if row["setting"] == SUPERVISED else teacher_of(settings[row["setting"]])
    teachers = {t for o in settings.values() for t in [teacher_of(o)] if t in TEACHER_ROWS}
    for teacher in sorted(teachers) if (ablation or sweep) else []:  # what the 2D teacher alone knows
        began = time.perf_counter()
        own = teacher_2d_miou(data, val[0], teacher)
        summary["rows"].append(_constant_row(TEACHER_ROWS[teacher], own, summary, plan, teacher,
                                             time.perf_counter() - began))
    summary["ablation"] = ablation
    stem = "sweep" if sweep else "ablation" if ablation else "demo"
    if sweep:
        points = [_sweep_point(row, data, val[0]) for row in summary["rows"] if row["setting"] in settings]
        summary["sweep"] = points
        pictures = [sweep_chart(points, out / "sweep.png")]
    elif ablation:
        pictures = [_bar_chart(summary, out / "ablation.png")]
    else:
        pictures = _pictures(out, data, runs, val[0])
    summary["pictures"] = [str(p) for p in pictures]
    write_text_atomic(out / f"{stem}_results.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(out / f"{stem}_results.md", _markdown(summary) + "\n")
    _render(summary)
    return summary


def _constant_row(setting: str, own: dict, summary: dict, plan: DemoPlan, teacher: str, seconds: float) -> dict:
    """A row that does not depend on the training seed (the 2D teacher's own mIoU), in the table's layout."""
    value, other = own["miou"], own[convention_key(summary["other_convention"])]
    return {"setting": setting, "miou_by_seed": {str(s): round(value, 2) for s in plan.seeds}, "mean": round(value, 2),
            "std": 0.0, "other_by_seed": {str(s): round(other, 2) for s in plan.seeds}, "other_mean": round(other, 2),
            "other_std": 0.0, "seconds": round(seconds, 1), "teacher": teacher,
            "silent_percent": round(own.get("silent_percent", 0.0), 2)}  # paired points it names no class for


def _sweep_point(row: dict, data: Path, sequence: str) -> dict:
    from seal.demo_references import teacher_2d_miou

    objective, level = row["setting"].split(", ", 1)
    if level == SWEEP_ANCHOR:
        return {"objective": objective, "label": level, "teacher_miou": None, "mean": row["mean"], "std": row["std"]}
    teacher, knobs = SWEEP_LEVELS[level]
    return {"objective": objective, "label": level, "teacher_miou": round(teacher_2d_miou(data, sequence, teacher,
                                                                                          knobs)["miou"], 2),
            "mean": row["mean"], "std": row["std"]}


def _bar_chart(summary: dict, path: Path) -> Path:
    """mean ± std (official mIoU) per setting as horizontal bars, seeds as dots."""
    from seal.viz.plot import _pyplot, save_figure

    plt = _pyplot()
    rows = summary["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [r["mean"] for r in rows], xerr=[r["std"] for r in rows], color="#4c72b0", alpha=0.8, capsize=3)
    pad = 0.01 * max([r["mean"] + r["std"] for r in rows] + [1.0])
    for yi, row in zip(y, rows, strict=True):
        ax.scatter(list(row["miou_by_seed"].values()), [yi] * len(row["miou_by_seed"]), color="black", s=10, zorder=3)
        ax.text(row["mean"] + row["std"] + pad, yi, f"{row['mean']:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, [r["setting"] for r in rows], fontsize=8)
    ax.set_xlabel(f"linear-probe mIoU % ({summary['miou_convention']}), mean ± std over seeds {summary['seeds']}")
    ax.set_title("seal ablation on synthetic sequences", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _summarise(results: dict[str, dict[int, dict]], plan: DemoPlan, seconds: float) -> dict:
    """Rows of mIoU % per setting and seed by the data's official convention (``miou`` of each run's summary)
    and, beside it, by the other one; ``results`` maps setting -> seed -> the run's summary.json."""
    first = next(iter(next(iter(results.values())).values()))
    convention = first.get("miou_convention", DEFAULT_CONVENTION)
    other = other_convention(convention)
    rows = []
    for setting, by_seed in results.items():
        values = np.array([100 * by_seed[s]["miou"] for s in plan.seeds])
        others = np.array([100 * by_seed[s][convention_key(other)] for s in plan.seeds])
        rows.append({"setting": setting,
                     "miou_by_seed": {str(s): round(float(v), 2) for s, v in zip(plan.seeds, values, strict=True)},
                     "mean": round(float(values.mean()), 2), "std": round(float(values.std(ddof=0)), 2),
                     "other_by_seed": {str(s): round(float(v), 2) for s, v in zip(plan.seeds, others, strict=True)},
                     "other_mean": round(float(others.mean()), 2), "other_std": round(float(others.std(ddof=0)), 2)})
    return {"rows": rows, "seeds": plan.seeds, "seconds": round(seconds, 1), "miou_convention": convention,
            "other_convention": other,
            "protocol": f"linear probe ({plan.probe_epochs} epochs) on {plan.sequences - 1} synthetic sequences x "
                        f"{plan.frames} frames ({plan.cameras} camera{'s' if plan.cameras > 1 else ''}), evaluated "
                        f"on 1 held-out sequence; pretraining {plan.pretrain_epochs} epochs with the tiny preset"}


def _cells(row: dict, seeds: list[int]) -> list[str]:
    """'official (other)' per seed, then 'mean ± std (mean ± std)'."""
    out = [f"{row['miou_by_seed'][str(s)]:.1f} ({row['other_by_seed'][str(s)]:.1f})" for s in seeds]
    return out + [f"{row['mean']:.1f} ± {row['std']:.1f} ({row['other_mean']:.1f} ± {row['other_std']:.1f})"]


def _convention_note(summary: dict) -> str:
    return (f"mIoU %: {MIOU_CONVENTIONS[summary['miou_convention']]}; in parentheses: "
            f"{MIOU_CONVENTIONS[summary['other_convention']]}")


def _markdown(summary: dict) -> str:
    seeds = summary["seeds"]
    timed = all("seconds" in row for row in summary["rows"])
    taught = all("teacher" in row for row in summary["rows"])
    head = ("| setting | " + ("teacher | " if taught else "") + " | ".join(f"seed {s}" for s in seeds)
            + " | mean ± std |")
    lines = [head + (" seconds |" if timed else ""),
             "|---|" + "---|" * (len(seeds) + taught) + "---|" + ("---|" if timed else "")]
    for row in summary["rows"]:
        lines.append(f"| {row['setting']} | " + (f"{row['teacher']} | " if taught else "")
                     + " | ".join(_cells(row, seeds)) + " |" + (f" {row['seconds']:.0f} |" if timed else ""))
    return "\n".join(lines) + (f"\n\nmIoU % on the validation sequence; {summary['protocol']}; {summary['seconds']} s."
                               f"\n{_convention_note(summary)}.")


def _render(summary: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    seeds = summary["seeds"]
    table = Table(title=f"seal {'ablation' if summary.get('ablation') else 'demo'}: linear-probe mIoU % on held-out "
                        "synthetic data", title_justify="left")
    table.add_column("setting")
    taught = all("teacher" in row for row in summary["rows"])
    if taught:
        table.add_column("teacher")
    for s in seeds:
        table.add_column(f"seed {s}", justify="right")
    table.add_column("mean ± std", justify="right")
    timed = all("seconds" in row for row in summary["rows"])
    if timed:
        table.add_column("seconds", justify="right")
    for row in summary["rows"]:
        table.add_row(row["setting"], *([row["teacher"]] if taught else []), *_cells(row, seeds),
                      *([f"{row['seconds']:.0f}"] if timed else []))
    console = console or Console()
    console.print(table)
    console.print(_convention_note(summary))
    console.print(f"{summary['protocol']}; {summary['seconds']} s in total")
    for picture in summary.get("pictures", []):
        console.print(f"picture: {picture}")


def _pictures(out: Path, data: Path, runs: dict[str, dict[int, Path]], val_sequence: str) -> list[Path]:
    """Predictions of the best Seal probe vs ground truth, and feature similarity maps of the three backbones."""
    from seal.core.config import VoxelConfig
    from seal.data import open_dataset
    from seal.models.segmentation import load_model
    from seal.viz.predictions import show_predictions, show_similarity

    dataset = open_dataset(data, sequences=[val_sequence])
    frame = dataset[len(dataset) // 2]
    seal_runs = runs[SEAL]
    best = max(seal_runs, key=lambda s: json.loads((seal_runs[s] / "summary.json").read_text())["miou"] or 0.0)
    model, meta = load_model(seal_runs[best] / "model.pt")
    voxel = VoxelConfig(**meta["voxel"])
    pictures = [show_predictions(model, frame, dataset.label_map, voxel, out / "predictions.png")]
    backbones = {setting: load_model(by_seed[best] / "model.pt")[0].backbone for setting, by_seed in runs.items()}
    names = dataset.label_map.class_names
    car = np.flatnonzero(frame.labels == names.index("car") + 1)
    near = car[np.argsort(np.linalg.norm(frame.xyz[car], axis=1))] if car.size else np.arange(frame.num_points)
    query = int(near[min(10, near.size - 1)])
    pictures.append(show_similarity(backbones, frame, voxel, out / "similarity.png", query))
    return pictures
