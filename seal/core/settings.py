"""Configuration files, presets and overrides -> a validated schema instance; and the listing `seal config` prints.

Every command builds its config the same way: schema defaults, then the YAML file or packaged preset (and, for
`seal pretrain`, an objective: ``--objective ppkt`` layers PPKT's loss weights, a dict the command line takes
from `seal.losses.objectives`), then ``key=value`` overrides. Sections of a file that the command does not read
are left out (a pretraining config gives `seal superpixels` its data/superpixels keys); unknown keys, ill-typed
and out-of-range values are one-line errors that name the key.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from seal.core.errors import ConfigError
from seal.core.registry import REGISTRY, registry_for

T = TypeVar("T")
PRESET_FOLDER = "configs"


def preset_names() -> dict[str, list[str]]:
    """Packaged presets by family: {"pretrain": ["nuscenes", "semantickitti", "tiny"], "downstream": ["tiny"]}."""
    out: dict[str, list[str]] = {}
    for entry in sorted(resources.files("seal").joinpath(PRESET_FOLDER).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and "_" in entry.name:
            family, name = entry.name[:-5].split("_", 1)
            out.setdefault(family, []).append(name)
    return out


def resolve_preset(value: str | Path | None, families: tuple[str, ...], objectives: Iterable[str] = ()
                   ) -> Path | None:
    """``--config``: a YAML path, or a packaged preset name looked up in ``families`` in order (naming one of
    ``objectives`` instead is an error that says to use ``--objective``)."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    for family in families:
        candidate = resources.files("seal").joinpath(PRESET_FOLDER, f"{family}_{path}.yaml")
        if candidate.is_file():
            return Path(str(candidate))
    if str(value) in tuple(objectives):
        raise ConfigError(f"--config {value}: {value} is an objective, not a preset: use --objective {value} "
                          "(with --config tiny|nuscenes|... for the rest)")
    known = ", ".join(f"{f}: {' '.join(n)}" for f, n in preset_names().items())
    raise ConfigError(f"--config {value}: no such file, and no packaged preset of that name for this command "
                      f"(presets: {known})")


def _section_keys() -> set[str]:
    from seal.core.schemas import SCHEMAS

    return {f.name for schema in SCHEMAS for f in dataclasses.fields(schema)}


def load_config(schema: type[T], path: str | Path | list[str | Path | dict] | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Schema defaults <- YAML file(s) and plain dict layers (an objective's), in order (sections this schema lacks
    dropped) <- ``key=value`` overrides, validated."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(schema)
    own = {f.name for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    layers: list[Any] = []
    paths = [p if isinstance(p, dict) else Path(p)
             for p in (path if isinstance(path, list) else [path] if path is not None else [])]
    for file in paths:
        if isinstance(file, dict):
            loaded = OmegaConf.create(file)
        elif not file.is_file():
            raise ConfigError(f"config file {file} not found")
        else:
            try:
                loaded = OmegaConf.load(file)
            except Exception as err:  # yaml errors come in several types
                raise ConfigError(f"config file {file} is not valid YAML: {err}".split("\n")[0]) from err
        if loaded is not None and not OmegaConf.is_dict(loaded):
            raise ConfigError(f"config file {file} must hold a mapping of sections (data:, voxel:, ...)")
        known = _section_keys()
        for key in list(loaded or {}):
            if key not in own and key in known:
                del loaded[key]  # another command's section: not this command's business
        layers.append(loaded or {})
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. voxel.size=0.05)")
    names = ["a dict layer" if isinstance(f, dict) else str(f) for f in paths]
    where = " + ".join(names) or "defaults"
    try:
        if overrides:
            where = "command line"
            layers.append(OmegaConf.from_dotlist([_keep_leading_zeros(item) for item in overrides]))
            names.append("command line")
        merged = base
        for name, layer in zip(names, layers, strict=True):  # one layer at a time: an error names its layer
            where = name
            merged = OmegaConf.merge(merged, layer)
        if overrides:
            _replace_dicts(merged, layers[-1], overrides)
        where = " + ".join(names) or "defaults"
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or getattr(err, "key", None)
        message = err.msg if hasattr(err, "msg") else str(err)
        raise ConfigError(f"config key {key!r} ({where}): {message}".split("\n")[0].rstrip(".")
                          + ". `seal config COMMAND` lists the valid keys.") from None
    validate(config)
    return config  # type: ignore[return-value]


def _replace_dicts(merged: Any, command_line: Any, overrides: list[str] | tuple[str, ...]) -> None:
    """A free-form dict written whole on the command line (``teacher.model_kwargs={patch: 16}``, ``={}``) replaces
    the preset's instead of merging into it: a user who writes the whole dict means that dict. A dotted key into it
    (``teacher.model_kwargs.depth=3``) still changes one entry."""
    from omegaconf import DictConfig, OmegaConf

    for item in overrides:
        key, _, value = item.partition("=")
        if not value.lstrip().startswith("{"):
            continue
        target = OmegaConf.select(merged, key.strip())
        if isinstance(target, DictConfig) and OmegaConf.get_type(target) is dict:
            OmegaConf.update(merged, key.strip(), OmegaConf.select(command_line, key.strip()), merge=False)


_LEADING_ZERO = re.compile(r"(?<![^\[,\s])(0\d+)(?![^\],\s])")  # a whole item: 00 in [00, 01], not in /p/00


def _keep_leading_zeros(item: str) -> str:
    """An override with its zero-padded numbers quoted (``data.sequences=[00,01]`` -> ``['00','01']``): OmegaConf
    would read ``00`` as the integer 0, losing the name of a sequence; an int field still converts '01' to 1.
    Quoted parts of the value are left as they are."""
    key, _, value = item.partition("=")
    parts = re.split(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", value)
    return key + "=" + "".join(p if i % 2 else _LEADING_ZERO.sub(r"'\1'", p) for i, p in enumerate(parts))


def _check_list(rule: str, value: Any) -> str | None:
    """A list rule ``[N]ELEMENT`` (exactly N items) or ``[N+]ELEMENT`` (at least N), optionally ending in
    `` ascending`` (each item >= the one before): the length, every item under ELEMENT, then the order."""
    size, _, element = rule[1:].partition("]")
    element, ascending = (element[: -len(" ascending")], True) if element.endswith(" ascending") else (element, False)
    if not isinstance(value, list | tuple):
        return "must be a list"
    at_least = size.endswith("+")
    count = int(size.rstrip("+"))
    if len(value) < count or (not at_least and len(value) != count):
        return f"must have {'at least ' if at_least else ''}{count} item{'s' * (count != 1)}, got {len(value)}"
    for i, item in enumerate(value):
        problem = _check(element, item) if element else None
        if problem:
            return f"item {i} ({item!r}) {problem}"
    if ascending and any(b < a for a, b in zip(value, value[1:], strict=False)):
        return "must be in ascending order (low, high)"
    return None


def _check(rule: str, value: Any) -> str | None:
    """The problem with ``value`` under ``rule`` (see `seal.core.config`), or None."""
    if rule.startswith("["):
        return _check_list(rule, value)
    if "|" in rule or rule[:1] not in "<>0123456789.-":
        choices = rule.split("|")
        return None if str(value) in choices else f"must be one of {', '.join(choices)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if ".." in rule:
        low, high = (float(x) for x in rule.split(".."))
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"
    op, bound = (rule[:2], float(rule[2:])) if rule[1] == "=" else (rule[:1], float(rule[1:]))
    ok = {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]
    return None if ok else f"must be {op} {bound:g}"


def validate(config: Any, prefix: str = "") -> None:
    """Raise ConfigError naming the first key whose value breaks its field's rule."""
    rules = getattr(type(config), "RULES", {})
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate(value, key + ".")
        elif value is not None and rules.get(f.name) == REGISTRY:
            registry = registry_for(type(config), f.name)  # None until its home package is imported: the
            if registry is not None and str(value) not in registry.choices():  # registry's get() checks then
                raise ConfigError(f"config key '{key}' = {value!r}: unknown {registry.kind}; must be one of "
                                  f"{', '.join(registry.choices())}")
        elif value is not None and f.name in rules:
            problem = _check(rules[f.name], value)
            if problem:
                raise ConfigError(f"config key '{key}' = {value!r}: {problem}")


def dump_config(config: Any) -> str:
    """The resolved config as plain YAML (what a run folder records)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(config))


@functools.cache
def _comments_of(cls: type) -> dict[str, str]:
    """Field name -> the comment written after it in the class body (inherited ones included)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines, start = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        body = ast.parse("".join(line if i else line.lstrip() for i, line in enumerate(lines)))
        for node in body.body[0].body:  # type: ignore[attr-defined]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                line = lines[node.end_lineno - 1]
                if "#" in line:
                    out[node.target.id] = line.split("#", 1)[1].strip()
    return out


def field_comments(config: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf key of ``config`` (dotted) -> its one-line comment ("" when the field has none)."""
    out: dict[str, str] = {}
    comments = _comments_of(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(field_comments(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = comments.get(f.name, "")
    return out


def describe_config(config: Any, indent: int = 0) -> str:
    """YAML of ``config`` with each field's comment beside it: what `seal config COMMAND` prints."""
    import yaml

    comments = _comments_of(type(config))
    lines = []
    pad = "  " * indent
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        note = comments.get(f.name, "")
        registry = registry_for(type(config), f.name)
        if registry is not None:  # the choices as registered now (plugins included)
            note = f"{note} [{' | '.join(registry.choices())}]".strip()
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:".ljust(40) + (f"  # {note}" if note else ""))
            lines.append(describe_config(value, indent + 1))
            continue
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        text = text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text
        lines.append(f"{pad}{f.name}: {text}".ljust(40) + (f"  # {note}" if note else ""))
    return "\n".join(lines)
