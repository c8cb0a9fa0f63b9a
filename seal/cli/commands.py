"""Every `seal` sub-command: its schema, the options that set its keys, and its ``run(cfg)``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from seal.cli.registry import Command, Option, register
from seal.core.errors import ConfigError, SealError
from seal.core.schemas import (
    CorruptSchema,
    DemoSchema,
    DownstreamSchema,
    EvaluateSchema,
    InfoSchema,
    PretrainSchema,
    ShowSchema,
    SuperpixelsSchema,
    SuperpointsSchema,
    SynthSchema,
)

DATA = Option(("path",), "data.path", help="dataset folder (SemanticKITTI, nuScenes or KITTI object layout)")
KIND = Option(("--kind",), "data.kind", help="dataset format (`seal datasets`); detected from the folder when omitted")
STAGE = [Option(("--shard",), "stage.shard"), Option(("--cache",), "cache.root"),
         Option(("--fail-fast",), "stage.fail_fast"), Option(("--no-progress",), "stage.progress", const=False)]


def _dataset(cfg):
    from seal.data import open_configured

    return open_configured(cfg.data)


def run_info(cfg: InfoSchema) -> int:
    from seal.data.info import render, summarize

    render(summarize(_dataset(cfg), label_sample=cfg.info.label_sample))
    return 0


def _show(what: str):
    def run(cfg: ShowSchema) -> int:
        dataset = _dataset(cfg)
        index = cfg.show.frame
        if not -len(dataset) <= index < len(dataset):
            raise SealError(f"--frame {index} is out of range: {dataset.root} has {len(dataset)} frames")
        if (cfg.show.rerun or cfg.show.frames != 1) and what != "frame":
            raise ConfigError(f"show.rerun and show.frames are for `seal show frame`, not `seal show {what}`")
        if cfg.show.frames != 1 and not cfg.show.rerun:
            raise ConfigError("--frames N logs N frames into a 3D recording: give --rerun FILE.rrd too")
        if cfg.show.rerun:
            _record_frames(cfg, dataset, index)
            if not cfg.show.out:
                return 0
        out = Path(cfg.show.out or f"{what}.png")
        if what in ("pairs", "frame"):
            from seal.viz import plot

            frame = dataset[index]
            if what == "pairs":
                out = plot.show_pairs(frame, out, min_depth=cfg.projection.min_depth)
            else:
                out = plot.show_frame(frame, out, dataset.label_map, min_depth=cfg.projection.min_depth)
        else:
            from seal.stages.cache import cache_root_for

            root = cache_root_for(dataset.root, cfg.cache.root)
            if what == "superpixels":
                from seal.viz.superpixels import show_superpixels

                out = show_superpixels(dataset, index, cfg.superpixels, root, out)
            else:
                from seal.viz.superpoints import show_superpoints

                out = show_superpoints(dataset, index, cfg.superpoints, root, out)
        print(f"wrote {out}")
        return 0

    return run


def _record_frames(cfg: ShowSchema, dataset, index: int) -> None:
    """`seal show frame --rerun`: frames ``index``.. (at most ``show.frames``, within its sequence) into a Rerun
    recording, with the superpixels and superpoints the cache holds for them."""
    from seal.stages.cache import cache_root_for
    from seal.superpixels import build_superpixelizer
    from seal.superpixels.stage import superpixel_cache
    from seal.superpoints.stage import superpoint_cache
    from seal.viz.rerun_log import recording

    root = cache_root_for(dataset.root, cfg.cache.root)
    seq_index, local = dataset.locate(index)
    seq = dataset.sequences[seq_index]
    start, count = dataset.sequence_starts[seq_index] + local, min(cfg.show.frames, len(seq) - local)
    superpixels = superpixel_cache(root, build_superpixelizer(cfg.superpixels))
    superpoints = (superpoint_cache(root, cfg.superpoints), cfg.superpoints.gap)
    with recording(cfg.show.rerun, dataset, superpixels, superpoints) as log:
        for i in range(start, start + count):
            log.log_frame(i, dataset[i])
    if count < cfg.show.frames:
        print(f"sequence {seq.name} ends after {count} of the {cfg.show.frames} frames asked for")
    print(f"wrote {cfg.show.rerun} ({log.frames} frames, {log.points} points)")


def run_synth(cfg: SynthSchema) -> int:
    from seal.synth import generate_dataset

    s = cfg.synth
    if not s.out:
        raise ConfigError("synth.out is not set: give --out FOLDER")
    root = generate_dataset(Path(s.out), sequences=s.sequences, frames=s.frames, seed=s.seed, cameras=s.cameras,
                            layout=s.layout, segments=s.segments)
    print(f"wrote {s.sequences} x {s.frames} frames to {root} ({s.layout} layout)")
    return 0


def _stage(cfg, name: str) -> int:
    from seal.stages.cache import cache_root_for, parse_shard

    dataset = _dataset(cfg)
    shard, root = parse_shard(cfg.stage.shard), cache_root_for(dataset.root, cfg.cache.root)
    if name == "superpixels":
        from seal.superpixels import build_superpixelizer
        from seal.superpixels.stage import run_superpixels

        report = run_superpixels(dataset, build_superpixelizer(cfg.superpixels), root, shard=shard,
                                 fail_fast=cfg.stage.fail_fast, progress=cfg.stage.progress)
    else:
        from seal.superpoints.stage import run_superpoints

        report = run_superpoints(dataset, cfg.superpoints, root, shard=shard, fail_fast=cfg.stage.fail_fast,
                                 progress=cfg.stage.progress)
    report.render()
    return 1 if report.failed else 0


def run_pretrain(cfg: PretrainSchema) -> int:
    from seal.engine.pretrain import pretrain

    pretrain(cfg, resume=Path(cfg.train.resume) if cfg.train.resume else None)
    return 0


def _downstream(mode: str):
    def run(cfg: DownstreamSchema) -> int:
        from seal.engine.downstream import run_downstream

        run_downstream(cfg, mode, resume=Path(cfg.train.resume) if cfg.train.resume else None)
        return 0

    return run


def run_evaluate(cfg: EvaluateSchema) -> int:
    from seal.engine.evaluation import run_evaluate as evaluate

    evaluate(cfg)
    return 0


def run_corrupt(cfg: CorruptSchema) -> int:
    from seal.robustness import corrupt_dataset

    c = cfg.corrupt
    if not c.out or not c.corruption:
        raise ConfigError("seal corrupt needs --corruption NAME and --out FOLDER (corrupt.corruption, corrupt.out)")
    dataset = _dataset(cfg)
    out = corrupt_dataset(dataset, c.corruption, c.severity, c.out, seed=c.seed, progress=c.progress)
    print(f"wrote {c.corruption}:{c.severity} of {dataset.root} to {out}")
    return 0


def run_demo(cfg: DemoSchema) -> int:
    from seal.demo import DemoPlan
    from seal.demo import run_demo as demo

    if cfg.demo.ablation and cfg.demo.sweep:
        raise ConfigError("seal demo: --ablation and --sweep are two runs; give one of them")
    plan = DemoPlan.quick() if cfg.demo.quick else DemoPlan(seeds=[0]) if cfg.demo.ablation or cfg.demo.sweep else None
    if cfg.demo.seeds:
        plan = replace(plan or DemoPlan(), seeds=list(cfg.demo.seeds))
    if cfg.demo.cameras != 1:
        plan = replace(plan or DemoPlan(), cameras=cfg.demo.cameras)
    if cfg.demo.pretrain_epochs:
        plan = replace(plan or DemoPlan(), pretrain_epochs=cfg.demo.pretrain_epochs)
    demo(Path(cfg.demo.out), plan, ablation=cfg.demo.ablation, sweep=cfg.demo.sweep)
    return 0


register(Command("info", "summarise what a dataset holds",
                 "Sequences, frames, points per frame, cameras, label map, labels and poses of a dataset, with the "
                 "class shares of a sample of frames.", InfoSchema, run_info,
                 [DATA, KIND, Option(("--label-sample",), "info.label_sample")]))
_SHOW = {"pairs": "camera images with the LiDAR points projected on them, coloured by depth",
         "frame": "bird's-eye view by label next to the cameras with the points on them, or a 3D recording",
         "superpixels": "superpixel boundaries and segments over the camera images (computed when not cached)",
         "superpoints": "bird's-eye view of a frame pair coloured by superpoint id (computed when not cached)"}
for _what, _text in _SHOW.items():
    register(Command(f"show {_what}", _text, _text[0].upper() + _text[1:] + ".", ShowSchema, _show(_what),
                     [DATA, KIND, Option(("--frame",), "show.frame"),
                      Option(("--out",), "show.out", help=f"PNG to write (default {_what}.png)")]
                     + ([Option(("--cache",), "cache.root")] if _what.startswith("super") else [])
                     + ([Option(("--rerun",), "show.rerun", help="write a 3D Rerun recording (.rrd) instead of the "
                                "PNG (the PNG too with --out); needs pip install 'seal[viewer]'"),
                         Option(("--frames",), "show.frames"), Option(("--cache",), "cache.root")]
                        if _what == "frame" else [])))
register(Command("synth", "generate synthetic driving sequences (SemanticKITTI or nuScenes layout)",
                 "Procedural streets seen by a spinning LiDAR and pinhole cameras, with exact poses and per-point "
                 "labels, written in the SemanticKITTI layout (or, with --layout nuscenes, as nuScenes tables with "
                 "keyframes, sweeps and lidarseg labels) so every seal command reads them like real data.",
                 SynthSchema, run_synth,
                 [Option(("--out",), "synth.out"), Option(("--sequences",), "synth.sequences"),
                  Option(("--frames",), "synth.frames"), Option(("--seed",), "synth.seed"),
                  Option(("--cameras",), "synth.cameras"), Option(("--layout",), "synth.layout"),
                  Option(("--segments",), "synth.segments")]))
register(Command("superpixels", "compute 2D superpixels for every camera image (cached)",
                 "One uint16 label map per camera image (0 = no segment) from SLIC, SAM, a Hugging Face segmenter "
                 "or precomputed maps, cached in a folder keyed by method and parameters: a second run is a no-op "
                 "and a killed run resumes.", SuperpixelsSchema, lambda cfg: _stage(cfg, "superpixels"),
                 [DATA, KIND, Option(("--method",), "superpixels.method"), *STAGE]))
register(Command("superpoints", "compute temporal superpoints for frame pairs (cached)",
                 "For each frame pair (t, t+gap) of a sequence: RANSAC ground removal, then one HDBSCAN clustering "
                 "of both frames registered into frame t, so one object has the same id in both frames.",
                 SuperpointsSchema, lambda cfg: _stage(cfg, "superpoints"),
                 [DATA, KIND, Option(("--gap",), "superpoints.gap"), *STAGE]))
register(Command("pretrain", "Seal pretraining of the 3D backbone (L_vfm + L_tmp + L_p2s)",
                 "Pretrain a sparse MinkUNet by distilling a frozen 2D teacher through superpixels (L_vfm) and "
                 "temporal superpoints (L_tmp, L_p2s). Missing superpixels/superpoints are computed first. Runs on "
                 "one CPU, one GPU, or many with `torchrun --nproc_per_node N -m seal pretrain ...`. "
                 "--objective ppkt|slidr|scalr trains a neighbouring objective instead (loss.* weights mix them). "
                 "Several dataset folders pretrain on all of them (data.mix_weights: sampling weight of each).",
                 PretrainSchema, run_pretrain,
                 [Option(("path",), "data.path", optional=True, rest="data.mix",
                         help="dataset folder(s): one, or several to pretrain on all (or data.path=...)"),
                  Option(("--resume",), "train.resume")], families=("pretrain",), objectives=True))
for _mode, _text in (("probe", "linear probing: a frozen backbone (BatchNorm in eval) and a new 1x1 classifier"),
                     ("finetune", "few-shot fine-tuning of the whole network (CE + Lovász-softmax)")):
    register(Command(_mode, _text, _text[0].upper() + _text[1:] + ", from a `seal pretrain` backbone or random "
                     "initialisation, on a --fraction of the labelled training set; then evaluated on the validation "
                     "split (table + CSV/JSON in the run folder).", DownstreamSchema, _downstream(_mode),
                     [DATA, KIND, Option(("--pretrained",), "model.pretrained"),
                      Option(("--fraction",), "split.fraction"), Option(("--resume",), "train.resume")],
                     families=("downstream", "pretrain")))
register(Command("evaluate", "per-class IoU / mIoU of a trained model, optionally under corruptions",
                 "Full-resolution predictions (voxel predictions mapped back to every point), one confusion matrix "
                 "over the split, per-class IoU and mIoU (console, CSV, JSON). --robustness runs every registered "
                 "corruption x 3 severities and reports mCE and mRR.", EvaluateSchema, run_evaluate,
                 [Option(("checkpoint",), "evaluate.checkpoint"), DATA, KIND, Option(("--split",), "evaluate.split"),
                  Option(("--robustness",), "evaluate.robustness"), Option(("--baseline",), "evaluate.baseline"),
                  Option(("--save-predictions",), "evaluate.save_predictions"), Option(("--out",), "evaluate.out"),
                  Option(("--rerun",), "evaluate.rerun")],
                 families=("downstream", "pretrain")))
register(Command("corrupt", "write a corrupted copy of a dataset (Robo3D corruptions)",
                 "Apply one Robo3D corruption (or a plugin's) at one severity and write the result in the "
                 "SemanticKITTI layout (with its label map), so every seal command reads it. Created points are "
                 "labelled ignore.",
                 CorruptSchema, run_corrupt,
                 [DATA, KIND, Option(("--corruption",), "corrupt.corruption"),
                  Option(("--severity",), "corrupt.severity"), Option(("--out",), "corrupt.out"),
                  Option(("--seed",), "corrupt.seed"), Option(("--no-progress",), "corrupt.progress", const=False)]))
register(Command("demo", "the whole pipeline on synthetic data, on a CPU, in minutes",
                 "Generate synthetic sequences, compute SLIC superpixels and superpoints, pretrain (full Seal, and "
                 "L_vfm only), linear-probe those and a randomly initialised backbone on 2 seeds, then print the "
                 "comparison table and write pictures.", DemoSchema, run_demo,
                 [Option(("--out",), "demo.out"), Option(("--quick",), "demo.quick"),
                  Option(("--ablation",), "demo.ablation"), Option(("--sweep",), "demo.sweep")]))


def run_doctor(cfg: PretrainSchema) -> int:
    from seal.cli.doctor import run_doctor as doctor

    return doctor(cfg)


register(Command("doctor", "check this machine: Python, torch/CUDA, GPUs, sparse engine, extras, weights files",
                 "One table of what a bug report needs and what to check first: Python, torch and its CUDA, GPU "
                 "names and memory, the sparse engine found, Triton, optional extras, thread counts, and whether "
                 "each configured weights file exists. Exit status 0 when a pretraining run could start.",
                 PretrainSchema, run_doctor, families=("pretrain",)))


from seal.cli.datasets import run_datasets  # noqa: E402 - `seal datasets` lives in its own module
from seal.core.schemas import DatasetsSchema  # noqa: E402

register(Command("datasets", "list every dataset seal reads: layout, label map, cameras, poses, splits",
                 "Every dataset format seal reads (the 11 datasets of the Seal paper and more): its layout on disk, "
                 "label map and number of evaluated classes, whether it has cameras and poses (pretraining needs "
                 "both; the others are for downstream only), what must be downloaded, how it is detected and "
                 "which split it applies.", DatasetsSchema, run_datasets))

from seal.cli.teachers import TeachersSchema, run_teachers  # noqa: E402 - `seal teachers` lives in its own module

register(Command("teachers", "list every registered 2D teacher: family, size, stride, width, weights, licence",
                 "Every 2D teacher teacher.backbone can name (the built-ins and those of installed plugins, with "
                 "their distribution): family, model size, output stride and width, the weight-file formats it "
                 "reads, the licence of the official weights and where they are published. Nothing is built or "
                 "downloaded.", TeachersSchema, run_teachers))

from seal.cli.export import ExportSchema, run_export  # noqa: E402 - `seal export` lives in its own module

register(Command("export", "a run's backbone as a Hugging Face Hub folder: config.json, model.safetensors, model card",
                 "Write a pretraining, probe or fine-tuning run as a self-describing folder: config.json (the "
                 "backbone's shape and voxelisation, the seal version), model.safetensors (the weights, no pickle) "
                 "and a README.md model card written from the run's records (data, teacher, objective, steps, and "
                 "the probe / fine-tuning results of the runs that started from it). seal.load_backbone(DIR) and "
                 "every --pretrained option read it.", ExportSchema, run_export,
                 [Option(("run",), "export.run"), Option(("--out",), "export.out")]))
