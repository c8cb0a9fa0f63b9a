"""Named components: one idiom for every kind of thing a name picks (dataset formats, superpixel methods, 2D
teachers, 3D backbones, sparse engines, corruptions, pretraining objectives).

A `Registry` maps a name to its implementation. Built-in implementations register themselves next to their code
(``@FORMATS.register("nuscenes")``); third-party packages register through the Python entry-point group the
registry names (``seal.formats``, ``seal.teachers``, ...), so seal finds them without any change to seal:

    [project.entry-points."seal.formats"]
    fleet = "seal_fleet:FleetFormat"

Entry points are listed without importing them (``names()`` reads only package metadata) and loaded the first
time their name is used, so a plugin's heavy dependencies cost nothing until it is picked. An unknown name is one
line listing the known ones.

A registry may fill a config field (``field=(SuperpixelConfig, "method")``): `seal.core.settings.validate` then
checks the field's value against the registry's names, `seal config` and ``--help`` list them, and nothing lists
the choices a second time. Such fields carry ``REGISTRY`` as their rule in the config class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from seal.core.errors import ConfigError

T = TypeVar("T")
REGISTRY = "registry"  # the RULES value of a config field whose choices a Registry holds

_BY_FIELD: dict[tuple[type, str], Registry] = {}
ALL: dict[str, Registry] = {}  # entry-point group -> registry, in creation order


@dataclass
class Entry(Generic[T]):
    """One registered name: where it comes from (``seal`` or the plugin's distribution) and its implementation."""

    name: str
    source: str
    value: T | None = None
    entry_point: metadata.EntryPoint | None = None  # a plugin's, loaded on first use

    def load(self, kind: str) -> T:
        if self.value is None and self.entry_point is not None:
            try:
                self.value = self.entry_point.load()
            except Exception as exc:  # a broken plugin must name itself, not crash deep inside importlib
                raise ConfigError(f"the {kind} {self.name!r} of plugin {self.source} ({self.entry_point.value}) "
                                  f"failed to load: {type(exc).__name__}: {exc}") from exc
        return self.value  # type: ignore[return-value]


class Registry(Generic[T]):
    """Names -> implementations of one kind of component (built-ins first, then plugins)."""

    def __init__(self, kind: str, group: str, field: tuple[type, str] | None = None, option: str | None = None,
                 extra_choices: tuple[str, ...] = ()) -> None:
        """``kind``: what a name picks, for messages ("dataset format"); ``group``: the entry-point group;
        ``field``: the config class and field that chooses from it; ``option``: that field's key as users type it
        (``data.kind``); ``extra_choices``: values the field accepts that are not components (``auto``)."""
        self.kind, self.group, self.option, self.extra_choices = kind, group, option, extra_choices
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_read = False
        if field is not None:
            _BY_FIELD[field] = self
        ALL[group] = self

    def register(self, name: str, value: T | None = None) -> Any:
        """Register ``value`` under ``name``; without ``value``, a decorator that registers what it decorates."""
        if value is None:
            def decorator(obj: T) -> T:
                self.register(name, obj)
                return obj
            return decorator
        if name in self._entries and self._entries[name].value is not value:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, "seal", value)
        return value

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for ep in metadata.entry_points(group=self.group):
            if ep.name in self._entries:  # a built-in keeps its name; the plugin is named in `seal doctor`
                continue
            dist = getattr(ep, "dist", None)
            source = f"{dist.name} {dist.version}" if dist is not None else ep.value
            self._entries[ep.name] = Entry(ep.name, source, None, ep)

    def refresh(self) -> None:
        """Read the entry points again (after installing a plugin in a running process, and in tests)."""
        self._entries = {k: e for k, e in self._entries.items() if e.entry_point is None}
        self._plugins_read = False

    def names(self) -> tuple[str, ...]:
        """Every registered name: the built-ins, then the plugins (listed without being imported), each sorted,
        so the order never depends on which module happened to be imported first."""
        self._read_plugins()
        builtin = sorted(n for n, e in self._entries.items() if e.entry_point is None)
        return (*builtin, *sorted(n for n, e in self._entries.items() if e.entry_point is not None))

    def choices(self) -> tuple[str, ...]:
        """What the config field accepts: the extra choices (``auto``), then the names."""
        return (*self.extra_choices, *self.names())

    def entry(self, name: str) -> Entry[T]:
        self._read_plugins()
        if name not in self._entries:
            raise ConfigError(self.unknown(name))
        return self._entries[name]

    def get(self, name: str) -> T:
        """The implementation of ``name`` (a plugin is imported now); one line listing the known names otherwise."""
        return self.entry(name).load(self.kind)

    def source(self, name: str) -> str:
        """``seal`` for a built-in, the plugin's distribution otherwise."""
        return self.entry(name).source

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, implementation) for every name, loading plugins."""
        for name in self.names():
            yield name, self.get(name)

    def unknown(self, name: str) -> str:
        where = f"{self.option}={name!r}" if self.option else f"{self.kind} {name!r}"
        return f"{where}: unknown {self.kind}; choose one of {', '.join(self.choices())}"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r}, names={list(self._entries)})"


def registry_for(config_class: type, field_name: str) -> Registry | None:
    """The registry that holds the choices of ``config_class.field_name`` (inherited fields included), if its
    home package has been imported."""
    for klass in config_class.__mro__:
        found = _BY_FIELD.get((klass, field_name))
        if found is not None:
            return found
    return None


def registered_fields() -> dict[tuple[type, str], Registry]:
    """Every (config class, field) a registry fills, for the test that each choice list equals its registry."""
    return dict(_BY_FIELD)


__all__ = ["Entry", "Registry", "REGISTRY", "ALL", "registry_for", "registered_fields"]
