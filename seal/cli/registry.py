"""Commands as a registry: each declares its config schema, the options that set its keys, and ``run(cfg)``.

The parser is generated from the registry, so ``--config FILE|preset`` and trailing ``key=value`` overrides work
the same for every command, and an option's help is the comment of the config field it sets.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seal.cli.components import registry_of
from seal.core.config import FRACTIONS
from seal.core.errors import ConfigError
from seal.core.registry import REGISTRY as CHOSEN_FROM_REGISTRY
from seal.core.settings import field_comments, load_config, resolve_preset
from seal.losses.objectives import OBJECTIVES


@dataclass
class Option:
    """A command-line option (or positional) that sets one config key."""

    flags: tuple[str, ...]            # ("path",) for a positional, ("--frame",) for an option
    key: str                          # the config key it sets, e.g. "show.frame"
    const: Any = None                 # for a flag without a value: the value it sets (e.g. False for --no-progress)
    optional: bool = False            # a positional that may be left out
    help: str | None = None           # default: the comment of the config field
    choices: tuple[Any, ...] | None = None  # default: the field's rule when it is a choice
    rest: str | None = None           # a positional that takes several values: the key the values after the first set


@dataclass
class Command:
    """One sub-command: its name (``show pairs`` for a nested one), schema, options and run function."""

    name: str
    help: str
    description: str
    schema: type
    run: Callable[[Any], int]
    options: list[Option] = field(default_factory=list)
    families: tuple[str, ...] = ("pretrain", "downstream")  # preset families, in the order they are looked up
    objectives: bool = False  # takes --objective NAME: that objective's layer (seal.losses.objectives) after --config

    def defaults(self) -> Any:
        return self.schema()


REGISTRY: dict[str, Command] = {}


def register(command: Command) -> Command:
    REGISTRY[command.name] = command
    return command


def _field(schema: type, key: str) -> tuple[dataclasses.Field, type]:
    """The dataclass field a dotted key names, and the class that declares it."""
    obj: Any = schema()
    *parents, leaf = key.split(".")
    for part in parents:
        obj = getattr(obj, part)
    match = [f for f in dataclasses.fields(obj) if f.name == leaf]
    if not match:
        raise AssertionError(f"{schema.__name__} has no key {key}")
    return match[0], type(obj)


def _add_option(parser: argparse.ArgumentParser, command: Command, option: Option, comments: dict[str, str]) -> None:
    f, owner = _field(command.schema, option.key)
    text = option.help or comments.get(option.key, "")
    dest = option.key.replace(".", "__")
    kwargs: dict[str, Any] = {"dest": dest, "help": f"{text} [{option.key}]".replace("%", "%%")}
    if option.flags[0].startswith("-"):
        kwargs["default"] = None
    rule = getattr(owner, "RULES", {}).get(f.name, "")
    registry = registry_of(owner, f.name) if rule == CHOSEN_FROM_REGISTRY else None
    choices = option.choices or (registry.choices() if registry else tuple(rule.split("|")) if "|" in rule else None)
    annotation = str(f.type)
    if option.const is not None or annotation == "bool":
        kwargs.update(action="store_const", const=True if option.const is None else option.const)
    else:
        kwargs["type"] = int if annotation.startswith("int") else float if annotation.startswith("float") else str
        if choices:
            kwargs["choices"] = [kwargs["type"](c) for c in choices]
        if not option.flags[0].startswith("-"):
            kwargs["metavar"] = option.key.split(".")[-1].upper() if option.flags[0] != "path" else "DATA"
            if option.rest:
                kwargs["nargs"] = "*" if option.optional else "+"
            elif option.optional:
                kwargs["nargs"] = "?"
    if not option.flags[0].startswith("-"):
        kwargs.pop("dest")
        parser.add_argument(dest, **kwargs)
    else:
        parser.add_argument(*option.flags, **kwargs)


def add_command_parser(sub: argparse._SubParsersAction, name: str, command: Command) -> None:
    parser = sub.add_parser(name, help=command.help, description=command.description,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Any config key may follow as key=value (see `seal config "
                                   f"{command.name}`).")
    comments = field_comments(command.defaults())
    for option in command.options:
        _add_option(parser, command, option, comments)
    presets = " or a packaged preset (" + ", ".join(command.families) + " presets: tiny, nuscenes, ...)"
    parser.add_argument("--config", help="YAML config file" + presets)
    if command.objectives:
        add_objective_option(parser)
    parser.set_defaults(_command=command.name)


def add_objective_option(parser: argparse.ArgumentParser) -> None:
    """``--objective NAME``: the loss weights (and superpixel method) of a registered objective, over --config."""
    parser.add_argument("--objective", choices=OBJECTIVES.names(),
                        help="pretraining objective (seal.losses.objectives: its loss weights; slidr: SLIC "
                             "superpixels) layered over --config, under key=value overrides")


def option_values(args: argparse.Namespace, command: Command) -> dict[str, Any]:
    """The config keys the given options set (options left out set nothing)."""
    out = {}
    for option in command.options:
        value = getattr(args, option.key.replace(".", "__"), None)
        if option.rest and isinstance(value, list):
            value, more = (value[0] if value else None), value[1:]
            if more:
                out[option.rest] = more
        if value is not None:
            out[option.key] = value
    return out


def build_config(command: Command, config: str | None, values: dict[str, Any], overrides: list[str],
                 objective: str | None = None) -> Any:
    """Defaults <- ``--config`` (a run being resumed: its config.yaml) <- ``--objective`` <- options <- ``key=value``.

    ``--resume auto`` resumes ``train.run_dir``, else the newest runs/COMMAND-* folder holding a checkpoint, and
    starts a fresh run when there is none, so a requeued job script needs no edit."""
    from seal.cli.components import load_for
    from seal.engine.rundir import latest_run, run_dir_of

    load_for(command.schema)  # every registry this command chooses from, filled before validation

    path = resolve_preset(config, command.families, OBJECTIVES.names())
    layers = [OBJECTIVES.get(objective).layer()] if objective else []
    keys = [f"{k}={_quote(v)}" for k, v in values.items()] + list(overrides)
    resume = next((k.split("=", 1)[1].strip("'") for k in reversed(keys) if k.startswith("train.resume=")), None)
    keys = [k for k in keys if not k.startswith("train.resume=")]
    if resume == "auto":
        fresh = load_config(command.schema, [*([path] if path else []), *layers], keys)
        data = getattr(fresh, "data", None)
        roots = [data.path, *[str(m).partition("::")[0] for m in getattr(data, "mix", None) or []]] \
            if data is not None and data.path else None
        found = latest_run(fresh.train.run_dir, command.name, roots)
        if found is None:
            print(f"seal: --resume auto: no earlier {command.name} run with a checkpoint; starting a new run")
            return fresh
        print(f"seal: --resume auto: continuing {found}")
        resume = str(found)
    if resume:
        if not Path(resume).exists():
            raise ConfigError(f"--resume {resume}: no such run folder or checkpoint file")
        from seal.engine.runrecord import run_kind

        kind = run_kind(run_dir_of(Path(resume)))
        if kind and kind != command.name:  # before its config.yaml is read as this command's
            raise ConfigError(f"--resume {run_dir_of(Path(resume))}: a {kind} run, not a {command.name} run: "
                              f"continue it with `seal {kind} --resume {run_dir_of(Path(resume))}`")
        if path is None:  # the run's own configuration is the base
            path = run_dir_of(Path(resume)) / "config.yaml"
            if not path.is_file():
                raise ConfigError(f"--resume {resume}: not a seal run folder ({path} not found)")
        keys.append(f"train.resume={_quote(resume)}")
    return load_config(command.schema, [*([path] if path else []), *layers], keys)


def _quote(value: Any) -> str:
    """A value as OmegaConf's dotlist reads it back unchanged (strings quoted)."""
    if isinstance(value, str):  # ${ escaped: a path holding it is a path, not an interpolation
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(_quote(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = ["Command", "Option", "REGISTRY", "register", "add_command_parser", "build_config", "option_values",
           "FRACTIONS"]
