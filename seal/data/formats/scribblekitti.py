"""ScribbleKITTI: SemanticKITTI with ``sequences/NN/scribbles/*.label`` (training sequences); sequences without
scribbles (08, validation) keep their dense ``labels/``.

It shares SemanticKITTI's scans, reader and frame lists through the shared functions (`kitti_layout.open_sequences`,
`splits.listed_split` with the ``semantickitti`` lists) rather than by inheriting its format: ScribbleKITTI has
no released corrupted sets and no Robo3D baseline of its own.
"""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import open_sequences
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout

SCRIBBLES = ScanLayout(label_dirs=("scribbles", "labels"))


def is_scribblekitti(root: Path) -> bool:
    return any(p.is_dir() for p in (root / "sequences").glob("*/scribbles"))


def open_scribblekitti(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    """The SemanticKITTI layout, labels from ``scribbles/`` where a sequence has them, else from ``labels/``."""
    return open_sequences(root, label_map, SCRIBBLES, kind="scribblekitti", default_map="scribblekitti")


@FORMATS.register("scribblekitti")
class ScribbleKittiFormat(SequenceSplitFormat):
    name = "scribblekitti"
    title = "ScribbleKITTI"
    layout = "SemanticKITTI + sequences/NN/scribbles/*.label (training sequences)"
    needs = "SemanticKITTI (labels/ of 08 for validation) + the ScribbleKITTI scribbles/ folders"
    detection = "a sequences/NN/scribbles/ folder"
    detect_priority = 30
    label_map = "scribblekitti"
    split_note = "as SemanticKITTI (its frame lists): train on scribbles, validate on 08's dense labels"
    miou_convention = "absent-as-zero"  # validated on SemanticKITTI's 08 with its dense labels: its evaluator
    lists = "semantickitti"  # the packaged few-shot lists it uses (its scans are SemanticKITTI's)
    detector = staticmethod(is_scribblekitti)
    reader = staticmethod(open_scribblekitti)

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        return splits.listed_split(dataset, fraction, self.lists)


__all__ = ["ScribbleKittiFormat", "is_scribblekitti", "open_scribblekitti", "SCRIBBLES"]
