"""DAPS-3D (DAPS-1): ``data/NN/{clouds,labels}`` (or ``NN/clouds`` at the root)."""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import children, resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout

DAPS = ScanLayout(scan_dir="clouds", calib=False, poses="none")


def _daps_root(root: Path) -> Path:
    return root / "data" if (root / "data").is_dir() else root


def is_daps3d(root: Path) -> bool:
    return bool(children(_daps_root(root), DAPS.scan_dir))


def open_daps3d(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "daps3d")
    return sequences_dataset(root, "daps3d", children(_daps_root(root), DAPS.scan_dir), lmap, DAPS, scale=None)


@FORMATS.register("daps3d")
class Daps3dFormat(SequenceSplitFormat):
    name = "daps3d"
    title = "DAPS-3D"
    layout = "data/NN/{clouds,labels}/ (DAPS-1), params.yml"
    needs = "the DAPS-1 release"
    detection = "data/NN/clouds/ (or NN/clouds/)"
    detect_priority = 33
    label_map = "daps3d"
    split_note = "train 00-07 09 10, val 08 (the DAPS3D repository's navigation.yml); few-shot: every k-th frame"
    miou_convention = "absent-as-zero"  # SemanticKITTI-style release; its evaluator unverified here
    cameras = poses = False
    train_sequences = ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10")
    val_sequences = ("08",)
    detector = staticmethod(is_daps3d)
    reader = staticmethod(open_daps3d)


__all__ = ["Daps3dFormat", "is_daps3d", "open_daps3d"]
