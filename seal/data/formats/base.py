"""What the formats share: a split of sequences as the official split, and a check of the options they take."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from seal.core.errors import ConfigError
from seal.core.frame import Dataset, DatasetFormat
from seal.data import splits


class SequenceSplitFormat(DatasetFormat):
    """A format whose official split, when it has one, is a split of sequences (see `splits.sequence_split`)."""

    train_sequences: tuple[str, ...] = ()
    val_sequences: tuple[str, ...] = ()
    options: tuple[str, ...] = ("label_map",)  # the reader options `open` accepts
    reader: str = ""    # "module:function" that opens the layout (imported on first use: readers pull in numpy,
    detector: str = ""  # pyarrow...); "module:function" that tells whether a folder holds it ("" = --kind only)

    def detect(self, root: Path) -> bool:
        return bool(self.detector) and bool(_function(self.detector)(root))

    def open(self, root: Path, **options: Any) -> Dataset:
        return _function(self.reader)(root, **self.accepted(options))

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        if not self.train_sequences:
            return None
        return splits.sequence_split(dataset, fraction, self.train_sequences, self.val_sequences)

    def rule_split(self, dataset: Dataset, fraction: int) -> list[int]:
        return splits.select_frames(dataset, fraction, rule_only=True)

    def accepted(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` when this format's reader takes them all; a ConfigError naming the first it does not."""
        for key in options:
            if key not in self.options:
                takes = ", ".join(f"data.{o}" for o in self.options) or "no options"
                raise ConfigError(f"data.{key} does not apply to the {self.title or self.name} format "
                                  f"(--kind {self.name}); it takes {takes}")
        return options


def _function(spec: str):
    """The function a ``"module:function"`` string names."""
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)
