"""`FORMATS`, the registry of dataset formats, and the format objects seal works with (one per kind, cached).

A format module registers its `DatasetFormat` subclass next to its code (``@FORMATS.register("nuscenes")``); a
third-party package registers one through the entry-point group ``seal.formats``
(``fleet = "seal_fleet:FleetFormat"``). Either way the registered name is the kind users pass as
``data.kind`` / ``--kind``, and the format object's ``name``.
"""

from __future__ import annotations

from seal.core.config import DataConfig
from seal.core.errors import ConfigError
from seal.core.frame import DatasetFormat
from seal.core.registry import Registry

FORMATS: Registry[type[DatasetFormat]] = Registry("dataset format", "seal.formats", field=(DataConfig, "kind"),
                                                  option="data.kind")
_OBJECTS: dict[str, DatasetFormat] = {}


def unknown_kind(kind: str) -> str:
    """The one-line message for a kind no format is registered under."""
    return f"unknown dataset kind {kind!r} (data.kind / --kind); choose one of {', '.join(FORMATS.names())}"


def format_of(kind: str) -> DatasetFormat:
    """The format object of ``kind`` (made once; a plugin's class is imported now). Its ``name`` is the registered
    name, whether or not the class sets one. A ConfigError naming the known kinds for an unknown one."""
    if kind not in FORMATS:
        raise ConfigError(unknown_kind(kind))
    cls = FORMATS.get(kind)
    fmt = _OBJECTS.get(kind)
    if fmt is None or type(fmt) is not cls:  # not made yet, or the plugins were read again (`FORMATS.refresh`)
        if not (isinstance(cls, type) and issubclass(cls, DatasetFormat)):
            raise ConfigError(f"the dataset format {kind!r} of {FORMATS.source(kind)} is {cls!r}, not a subclass "
                              "of seal.core.frame.DatasetFormat")
        fmt = cls()
        fmt.name = kind
        _OBJECTS[kind] = fmt
    return fmt


def detection_order() -> tuple[list[DatasetFormat], list[ConfigError]]:
    """Every format by ``detect_priority`` (ties: registration order), and the errors of plugins that failed to
    load (they are left out, so a broken plugin does not stop seal recognising the other layouts)."""
    formats, broken = [], []
    for kind in FORMATS.names():
        try:
            formats.append(format_of(kind))
        except ConfigError as err:
            broken.append(err)
    return sorted(formats, key=lambda f: f.detect_priority), broken


__all__ = ["FORMATS", "format_of", "detection_order", "unknown_kind"]
