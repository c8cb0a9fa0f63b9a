"""The `seal` command: one entry point, the sub-commands generated from the registry.

Every sub-command takes ``--config FILE|preset`` and trailing ``key=value`` overrides (see `seal config COMMAND`).
Errors seal raises on purpose print as one line naming the file or option at fault, with exit status 2 (a
training run that diverged: 3, `seal.core.errors.Diverged`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from seal import __version__
from seal.core.errors import ConfigError, Preempted, SealError

EPILOG = """\
examples:
  seal info ../shared/data/nuscenes-keyframe
  seal show pairs ../shared/data/nuscenes-keyframe --out pairs.png
  seal synth --out synth --sequences 4 --frames 20
  seal superpixels synth --config tiny
  seal superpoints synth --gap 1 --shard 0/2
  seal pretrain synth --config tiny train.run_dir=runs/tiny
  seal config pretrain --config tiny
"""


def build_parser() -> argparse.ArgumentParser:
    from seal.cli import commands  # noqa: F401 - registers the commands
    from seal.cli.registry import REGISTRY, add_command_parser, add_objective_option

    parser = argparse.ArgumentParser(
        prog="seal", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Pretrain LiDAR segmentation backbones by distilling vision foundation models (Seal).")
    parser.add_argument("--version", action="version", version=f"seal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, command in REGISTRY.items():
        if " " in name:
            group, leaf = name.split(" ", 1)
            if group not in groups:
                holder = sub.add_parser(group, help="draw pictures of data and results (PNG)",
                                        description="Pictures of the pipeline's inputs and outputs, as PNG files.")
                groups[group] = holder.add_subparsers(dest="what", metavar="WHAT", required=True)
            add_command_parser(groups[group], leaf, command)
        else:
            add_command_parser(sub, name, command)
    config = sub.add_parser("config", help="print every configuration key of a command, its value and meaning",
                            description="Print the configuration COMMAND starts from (after --config and key=value "
                                        "overrides): every key it reads, with its value and a one-line comment.")
    config.add_argument("target", nargs="?", default="pretrain", metavar="COMMAND",
                        help="the command whose keys to print (default pretrain, the one that reads the "
                             "most): " + ", ".join(sorted({n.split(" ")[0] for n in REGISTRY})))
    config.add_argument("--config", help="YAML config file or a packaged preset")
    add_objective_option(config)
    config.set_defaults(_command="config")
    return parser


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def is_override(word: str) -> bool:
    """Whether a positional word is a ``key=value`` override rather than a path: its part before the first ``=``
    is a dotted key (``voxel.size``, not ``/data/run=3`` or ``a=b/c``), and it names no existing file or folder."""
    key, sep, _ = word.partition("=")
    return bool(sep) and bool(_KEY.match(key)) and not Path(word).exists()


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Options, then the key=value overrides (which may come anywhere after the command)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [e for e in extra if "=" in e and not e.startswith("-")]
    stray = [e for e in extra if e not in overrides]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    # an optional positional (seal pretrain [DATA]) takes the first override when no dataset is given
    path = getattr(args, "data__path", None)
    if isinstance(path, str) and is_override(path):
        args.data__path, overrides = None, [path, *overrides]
    if isinstance(path, list):  # several datasets (seal pretrain D1 D2 ...): the key=value ones are overrides
        args.data__path = [p for p in path if not is_override(p)]
        overrides = [p for p in path if is_override(p)] + overrides
    target = getattr(args, "target", None)
    if isinstance(target, str) and is_override(target):
        args.target, overrides = "pretrain", [target, *overrides]
    return args, overrides


def run(args: argparse.Namespace, overrides: list[str]) -> int:
    from seal.cli.registry import REGISTRY, build_config, option_values

    if args._command == "config":
        from seal.core.settings import describe_config

        names = [n for n in REGISTRY if n == args.target or n.startswith(args.target + " ")]
        if not names:
            raise ConfigError(f"seal config {args.target}: no such command; choose one of "
                              + ", ".join(sorted({n.split(' ')[0] for n in REGISTRY})))
        name = names[0]
        cfg = build_config(REGISTRY[name], args.config, {}, overrides, args.objective)
        print(f"# seal {args.target}: every key, its value here, and what it means\n{describe_config(cfg)}")
        return 0
    command = REGISTRY[args._command]
    cfg = build_config(command, args.config, option_values(args, command), overrides, getattr(args, "objective", None))
    return command.run(cfg)


def main(argv: list[str] | None = None) -> int:
    args, overrides = _parse(argv)
    try:
        return run(args, overrides)
    except Preempted as stop:
        print(f"seal: {stop}", file=sys.stderr)
        return Preempted.exit_code
    except SealError as err:
        print(f"seal: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)  # 2 for bad input; Diverged: 3
    except KeyboardInterrupt:
        print("seal: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
