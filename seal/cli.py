"""The `seal` command: one entry point, one sub-command per pipeline step.

Every sub-command takes trailing ``key=value`` overrides of the typed config (see `seal config`).
Errors seal raises on purpose print as one line naming the file or option at fault, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seal import __version__
from seal.errors import SealError

EPILOG = """\
examples:
  seal info ../shared/data/nuscenes-keyframe
  seal show pairs ../shared/data/nuscenes-keyframe --out pairs.png
  seal synth --out synth --sequences 4 --frames 20
  seal show frame synth --frame 3 --out frame.png
  seal superpixels ../shared/data/nuscenes-keyframe --method slic --cache cache
  seal superpoints synth --gap 1 --shard 0/2
  seal pretrain synth --config tiny train.run_dir=runs/tiny
  seal corrupt synth --corruption fog --severity heavy --out synth-fog-heavy
  seal config voxel.size=0.05
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config file (keys as printed by `seal config`)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. voxel.size=0.05 projection.min_depth=2")


def _add_dataset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="dataset folder (SemanticKITTI, nuScenes or KITTI object layout)")
    parser.add_argument("--kind", choices=["semantickitti", "nuscenes", "kitti-object"],
                        help="dataset layout; detected from the folder when omitted")


def _add_stage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shard", metavar="i/n", help="process every n-th item from the i-th (default: the "
                        "torchrun rank/world size, else 0/1); shards never overlap")
    parser.add_argument("--cache", type=Path, help="cache folder (default: cache.root, else DATASET/seal_cache, "
                        "else ~/.cache/seal/NAME-HASH when the dataset is read-only)")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed item")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seal", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Pretrain LiDAR segmentation backbones by distilling vision foundation models (Seal).")
    parser.add_argument("--version", action="version", version=f"seal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = sub.add_parser("info", help="summarise what a dataset holds",
                          description="Sequences, frames, points per frame, cameras, label map, labels and poses "
                                      "of a dataset, with the class shares of a sample of frames.")
    _add_dataset(info)
    info.add_argument("--label-sample", type=int, default=20, metavar="N",
                      help="frames read to measure class shares (default 20; 0 skips)")
    _add_common(info)

    show = sub.add_parser("show", help="draw pictures of data and results (PNG)",
                          description="Pictures of the pipeline's inputs and outputs, written as PNG files.")
    what = show.add_subparsers(dest="what", metavar="WHAT", required=True)
    pairs = what.add_parser("pairs", help="camera images with the LiDAR points projected on them",
                            description="Every camera image of one frame with its paired LiDAR points drawn on "
                                        "it, coloured by depth: the check that calibration and projection hold.")
    _add_dataset(pairs)
    pairs.add_argument("--frame", type=int, default=0, help="frame index over the whole dataset (default 0)")
    pairs.add_argument("--out", type=Path, default=Path("pairs.png"), help="PNG to write (default pairs.png)")
    _add_common(pairs)
    frame = what.add_parser("frame", help="bird's-eye view by label next to the cameras",
                            description="A bird's-eye view of one frame coloured by semantic label (by height "
                                        "when unlabelled) next to its camera images with the points on them.")
    _add_dataset(frame)
    frame.add_argument("--frame", type=int, default=0, help="frame index over the whole dataset (default 0)")
    frame.add_argument("--out", type=Path, default=Path("frame.png"), help="PNG to write (default frame.png)")
    _add_common(frame)

    for name, text in (("superpixels", "superpixel boundaries and segments over the camera images"),
                       ("superpoints", "bird's-eye view of a frame pair coloured by superpoint id")):
        item = what.add_parser(name, help=text, description=text[0].upper() + text[1:] + ", from the cache "
                               "(computed on the fly when absent).")
        _add_dataset(item)
        item.add_argument("--frame", type=int, default=0, help="frame index over the whole dataset (default 0)")
        item.add_argument("--out", type=Path, default=Path(f"{name}.png"), help=f"PNG to write (default {name}.png)")
        item.add_argument("--cache", type=Path, help="cache folder (as for the stage command)")
        _add_common(item)

    synth = sub.add_parser("synth", help="generate synthetic driving sequences (SemanticKITTI layout)",
                           description="Procedural streets seen by a spinning LiDAR and pinhole cameras, with "
                                       "exact poses and per-point labels, written in the SemanticKITTI layout "
                                       "so every seal command reads them like real data.")
    synth.add_argument("--out", type=Path, required=True, help="folder to write the dataset into")
    synth.add_argument("--sequences", type=int, default=4, help="number of sequences (default 4)")
    synth.add_argument("--frames", type=int, default=20, help="frames per sequence (default 20)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    synth.add_argument("--cameras", type=int, default=1, help="cameras per frame: 1 (front) up to 6 (a ring)")

    spx = sub.add_parser("superpixels", help="compute 2D superpixels for every camera image (cached)",
                         description="One uint16 label map per camera image (0 = no segment) from SLIC, SAM, a "
                                     "Hugging Face segmenter or precomputed maps. Output is cached in a folder "
                                     "keyed by method and parameters; finished images are skipped, so a second "
                                     "run is a no-op and a killed run resumes.")
    _add_dataset(spx)
    spx.add_argument("--method", choices=["slic", "sam", "hf", "precomputed"],
                     help="superpixel source (default: superpixels.method, slic)")
    _add_stage_options(spx)
    _add_common(spx)
    spt = sub.add_parser("superpoints", help="compute temporal superpoints for frame pairs (cached)",
                         description="For each frame pair (t, t+gap) of a sequence: RANSAC ground removal, then "
                                     "one HDBSCAN clustering of both frames registered into frame t, so one object "
                                     "has the same segment id in both frames. Cached like superpixels.")
    _add_dataset(spt)
    spt.add_argument("--gap", type=int, help="pair frame t with t+gap (default: superpoints.gap, 1)")
    _add_stage_options(spt)
    _add_common(spt)

    pre = sub.add_parser("pretrain", help="Seal pretraining of the 3D backbone (L_vfm + L_tmp + L_p2s)",
                         description="Pretrain a sparse MinkUNet by distilling a frozen 2D teacher through "
                                     "superpixels (L_vfm) and temporal superpoints (L_tmp, L_p2s). Missing "
                                     "superpixels/superpoints are computed first (cached). Runs on one CPU, one "
                                     "GPU, or many with `torchrun --nproc_per_node N -m seal pretrain ...`.")
    pre.add_argument("path", type=Path, nargs="?", help="dataset folder (or data.path=... in the config)")
    pre.add_argument("--resume", type=Path, metavar="RUN", help="continue a run: its folder or a checkpoint file")
    _add_common(pre)

    for mode, text in (("probe", "linear probing: a frozen backbone (BatchNorm in eval) and a new 1x1 classifier"),
                       ("finetune", "few-shot fine-tuning of the whole network (CE + Lovász-softmax)")):
        down = sub.add_parser(mode, help=text, description=text[0].upper() + text[1:] + ", from a `seal pretrain` "
                              "backbone or random initialisation, on a --fraction of the labelled training set; "
                              "then evaluated on the validation split (table + CSV/JSON in the run folder).")
        _add_dataset(down)
        down.add_argument("--pretrained", type=Path, help="backbone.pt of a pretraining run (default: random init)")
        down.add_argument("--fraction", type=int, choices=[1, 5, 10, 25, 100],
                          help="% of the labelled training set (committed split files; default split.fraction)")
        _add_common(down)
    ev = sub.add_parser("evaluate", help="per-class IoU / mIoU of a trained model, optionally under corruptions",
                        description="Full-resolution predictions (voxel predictions mapped back to every point), one "
                                    "confusion matrix over the split, per-class IoU and mIoU (console, CSV, JSON). "
                                    "--robustness runs all 8 corruptions x 3 severities and reports mCE and mRR.")
    ev.add_argument("checkpoint", type=Path, help="model.pt of `seal probe` / `seal finetune`")
    _add_dataset(ev)
    ev.add_argument("--split", choices=["val", "all"], default="val", help="frames to evaluate (default val)")
    ev.add_argument("--robustness", action="store_true", help="evaluate under the eight corruptions too")
    ev.add_argument("--baseline", type=Path, help="robustness baseline YAML (default: the paper's MinkUNet)")
    ev.add_argument("--save-predictions", type=Path, metavar="DIR",
                    help="write predictions in the dataset's format (SemanticKITTI .label / nuScenes lidarseg .bin)")
    ev.add_argument("--out", type=Path, help="folder for the results (default: next to the checkpoint)")
    _add_common(ev)

    demo = sub.add_parser("demo", help="the whole pipeline on synthetic data, on a CPU, in minutes",
                          description="Generate synthetic sequences, compute SLIC superpixels and superpoints, "
                                      "pretrain (full Seal, and L_vfm only), linear-probe those and a randomly "
                                      "initialised backbone on 2 seeds, then print the comparison table and write "
                                      "pictures (predictions vs ground truth, feature similarity).")
    demo.add_argument("--out", type=Path, default=Path("seal-demo"), help="output folder (default seal-demo)")
    demo.add_argument("--quick", action="store_true", help="a much smaller run (a smoke test, not a result)")

    cor = sub.add_parser("corrupt", help="write a corrupted copy of a dataset (Robo3D corruptions)",
                         description="Apply one of the eight Robo3D corruptions (fog, wet_ground, snow, motion_blur, "
                                     "beam_missing, crosstalk, incomplete_echo, cross_sensor) at one severity and "
                                     "write the result in the SemanticKITTI layout (with its label map), so every "
                                     "seal command reads it. Points a corruption creates are labelled ignore.")
    _add_dataset(cor)
    cor.add_argument("--corruption", required=True, help="corruption name")
    cor.add_argument("--severity", required=True, choices=["light", "moderate", "heavy"])
    cor.add_argument("--out", type=Path, required=True, help="folder to write the corrupted dataset into")
    cor.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")
    cor.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_common(cor)

    config = sub.add_parser("config", help="print the resolved configuration",
                            description="Print the configuration every command starts from, after the optional "
                                        "YAML file and key=value overrides: the list of valid keys.")
    _add_common(config)
    return parser


def _preset(path: Path | None, family: str = "pretrain") -> Path | None:
    """``--config tiny`` names a packaged preset (seal/configs/<family>_tiny.yaml, family = pretrain for
    `seal pretrain`, downstream for probe/finetune); anything else is a path."""
    if path is None or path.suffix in (".yaml", ".yml") or path.exists():
        return path
    from importlib import resources

    for name in (f"{family}_{path}.yaml", f"{path}.yaml"):
        candidate = resources.files("seal") / "configs" / name
        if candidate.is_file():
            return Path(str(candidate))
    raise SealError(f"--config {path}: no such file, and no packaged {family} preset of that name (pretrain: "
                    "tiny, nuscenes, semantickitti; downstream: tiny)")


def _config(args: argparse.Namespace):
    from seal.config import load_config

    overrides = list(args.overrides)
    if getattr(args, "method", None):
        overrides.append(f"superpixels.method={args.method}")
    if getattr(args, "gap", None) is not None:
        overrides.append(f"superpoints.gap={args.gap}")
    return load_config(path=_preset(args.config), overrides=overrides)


def _cache_root(args: argparse.Namespace, cfg, dataset) -> Path:
    from seal.stages.cache import cache_root_for

    return cache_root_for(dataset.root, args.cache or cfg.cache.root)


def _run_stage(args: argparse.Namespace, cfg, dataset) -> int:
    from seal.stages.cache import parse_shard

    shard = parse_shard(args.shard)
    root = _cache_root(args, cfg, dataset)
    if args.command == "superpixels":
        from seal.superpixels import build_superpixelizer
        from seal.superpixels.stage import run_superpixels

        report = run_superpixels(dataset, build_superpixelizer(cfg.superpixels), root, shard=shard,
                                 fail_fast=args.fail_fast, progress=not args.no_progress)
    else:
        from seal.superpoints.stage import run_superpoints

        report = run_superpoints(dataset, cfg.superpoints, root, shard=shard, fail_fast=args.fail_fast,
                                 progress=not args.no_progress)
    report.render()
    return 1 if report.failed else 0


def _open(args: argparse.Namespace, cfg):
    from seal.data import open_configured

    return open_configured(cfg.data, args.path, args.kind)


def _frame(dataset, index: int):
    if not -len(dataset) <= index < len(dataset):
        raise SealError(f"--frame {index} is out of range: {dataset.root} has {len(dataset)} frames")
    return dataset[index]


def run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from seal.demo import DemoPlan, run_demo

        run_demo(args.out, DemoPlan.quick() if args.quick else DemoPlan())
        return 0
    if args.command == "synth":
        from seal.synth import generate_dataset

        root = generate_dataset(args.out, sequences=args.sequences, frames=args.frames, seed=args.seed,
                                cameras=args.cameras)
        print(f"wrote {args.sequences} x {args.frames} frames to {root}")
        return 0
    if args.command in ("probe", "finetune"):
        from seal.config import load_config
        from seal.downstream.config import DownstreamConfig
        from seal.engine.downstream import run_downstream

        extra = [f"data.path={args.path}"]
        extra += [f"pretrained={args.pretrained}"] if args.pretrained else []
        extra += [f"split.fraction={args.fraction}"] if args.fraction else []
        extra += [f"data.kind={args.kind}"] if args.kind else []
        cfg = load_config(DownstreamConfig, _preset(args.config, "downstream"), list(args.overrides) + extra)
        run_downstream(cfg, args.command)
        return 0
    if args.command == "evaluate":
        from seal.downstream.run_eval import run_evaluate

        run_evaluate(args)
        return 0
    if args.command == "pretrain":
        from seal.engine.pretrain import pretrain, resolve_config

        if args.path is not None and "=" in str(args.path):  # no dataset given: the first override landed here
            args.overrides, args.path = [str(args.path), *args.overrides], None
        overrides = list(args.overrides) + ([f"data.path={args.path}"] if args.path else [])
        cfg = resolve_config(_preset(args.config), overrides, args.resume)
        pretrain(cfg, resume=args.resume)
        return 0
    cfg = _config(args)
    if args.command == "config":
        from seal.config import dump_config

        print(dump_config(cfg), end="")
        return 0
    dataset = _open(args, cfg)
    if args.command == "info":
        from seal.info import render, summarize

        render(summarize(dataset, label_sample=args.label_sample))
        return 0
    if args.command == "corrupt":
        from seal.data.corruptions import corrupt_dataset

        out = corrupt_dataset(dataset, args.corruption, args.severity, args.out, seed=args.seed,
                              progress=not args.no_progress)
        print(f"wrote {args.corruption}:{args.severity} of {dataset.root} to {out}")
        return 0
    if args.command in ("superpixels", "superpoints"):
        return _run_stage(args, cfg, dataset)
    if args.command == "show":
        from seal import viz

        frame = _frame(dataset, args.frame)
        if args.what == "pairs":
            out = viz.show_pairs(frame, args.out, min_depth=cfg.projection.min_depth)
        elif args.what == "frame":
            out = viz.show_frame(frame, args.out, dataset.label_map, min_depth=cfg.projection.min_depth)
        elif args.what == "superpixels":
            from seal.superpixels.show import show_superpixels

            out = show_superpixels(dataset, args.frame, cfg.superpixels, _cache_root(args, cfg, dataset), args.out)
        else:
            from seal.superpoints.show import show_superpoints

            out = show_superpoints(dataset, args.frame, cfg.superpoints, _cache_root(args, cfg, dataset), args.out)
        print(f"wrote {out}")
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may come after options (argparse alone would reject them there)
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or "=" not in e]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return run(args)
    except SealError as err:
        print(f"seal: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seal: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
