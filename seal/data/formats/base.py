"""What the built-in formats share: a detector and a reader named by reference, a check of the options a reader
takes, and a split of sequences as the official split (the split rules themselves are `seal.data.splits`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from seal.core.errors import ConfigError
from seal.core.frame import Dataset, DatasetFormat
from seal.data import splits


class SequenceSplitFormat(DatasetFormat):
    """A format whose official split, when it has one, is a split of sequences (see `splits.sequence_split`).

    Subclasses set ``detector`` and ``reader`` to the functions of their module, wrapped in `staticmethod`:
    ``detector = staticmethod(is_semanticstf)``; ``reader = staticmethod(open_semanticstf)``."""

    train_sequences: tuple[str, ...] = ()
    val_sequences: tuple[str, ...] = ()
    options: tuple[str, ...] = ("label_map",)  # the reader options `open` accepts
    detector: Callable[[Path], bool] | None = None  # whether a folder holds the layout (None: --kind only)
    reader: Callable[..., Dataset] | None = None    # opens the layout, with the options above

    def detect(self, root: Path) -> bool:
        return self.detector is not None and bool(self.detector(root))

    def open(self, root: Path, **options: Any) -> Dataset:
        if self.reader is None:
            raise NotImplementedError(f"the {self.name} format names no reader")
        return self.reader(root, **self.accepted(options))

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


__all__ = ["SequenceSplitFormat"]
