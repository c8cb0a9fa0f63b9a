"""Every kind of pluggable component and the home package that registers its built-ins, imported only when a
command needs it (the model registries pull in torch, which `seal info` or `seal --help` should not pay for).

| group             | registry                          | config key            |
|-------------------|-----------------------------------|-----------------------|
| seal.formats      | `seal.data.formats.FORMATS`       | data.kind             |
| seal.superpixels  | `seal.superpixels.SUPERPIXELS`    | superpixels.method    |
| seal.teachers     | `seal.models.TEACHERS`            | teacher.backbone      |
| seal.backbones    | `seal.models.BACKBONES`           | model.backbone.name   |
| seal.engines      | `seal.models.ENGINES`             | model.engine          |
| seal.corruptions  | `seal.robustness.CORRUPTIONS`     | corrupt.corruption    |
| seal.objectives   | `seal.losses.objectives.OBJECTIVES` | --objective         |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from seal.core.config import BackboneConfig, CorruptOptions, DataConfig, ModelConfig, SuperpixelConfig, TeacherConfig
from seal.core.registry import REGISTRY, Registry


def _formats() -> Registry:
    from seal.data.formats import FORMATS

    return FORMATS


def _superpixels() -> Registry:
    from seal.superpixels import SUPERPIXELS

    return SUPERPIXELS


def _teachers() -> Registry:
    from seal.models import TEACHERS

    return TEACHERS


def _backbones() -> Registry:
    from seal.models import BACKBONES

    return BACKBONES


def _engines() -> Registry:
    from seal.models import ENGINES

    return ENGINES


def _corruptions() -> Registry:
    from seal.robustness import CORRUPTIONS

    return CORRUPTIONS


def objectives() -> Registry:
    """The pretraining objectives (``--objective``), which no config field holds."""
    from seal.losses.objectives import OBJECTIVES

    return OBJECTIVES


HOMES: dict[tuple[type, str], Callable[[], Registry]] = {
    (DataConfig, "kind"): _formats, (SuperpixelConfig, "method"): _superpixels,
    (TeacherConfig, "backbone"): _teachers, (BackboneConfig, "name"): _backbones, (ModelConfig, "engine"): _engines,
    (CorruptOptions, "corruption"): _corruptions}


def registry_of(config_class: type, field_name: str) -> Registry | None:
    """The registry holding the choices of ``config_class.field_name`` (its home imported now), if any."""
    for klass in config_class.__mro__:
        home = HOMES.get((klass, field_name))
        if home is not None:
            return home()
    return None


def load_for(schema: type) -> None:
    """Import the home of every registry a command's schema chooses from, so validation sees all its names."""
    def walk(cls: type) -> None:
        rules = getattr(cls, "RULES", {})
        for f in dataclasses.fields(cls):
            if rules.get(f.name) == REGISTRY:
                registry_of(cls, f.name)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                walk(type(default))
    walk(schema)


def all_kinds() -> dict[str, Registry]:
    """Every registry by entry-point group, each with its built-ins registered."""
    return {r.group: r for r in (*(home() for home in HOMES.values()), objectives())}


__all__ = ["HOMES", "all_kinds", "load_for", "objectives", "registry_of"]
