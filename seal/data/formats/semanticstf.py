"""SemanticSTF: ``{train,val,test}/{velodyne,labels}`` (5 float32 per point, intensity 0..255), one sequence per
split folder."""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout

STF = ScanLayout(columns=5, calib=False, poses="none")
STF_SPLITS = ("train", "val", "test")


def is_semanticstf(root: Path) -> bool:
    return any((root / split / "velodyne").is_dir() for split in STF_SPLITS)


def open_semanticstf(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "semanticstf")
    dirs = [root / s for s in STF_SPLITS if (root / s / "velodyne").is_dir()]
    return sequences_dataset(root, "semanticstf", dirs, lmap, STF, scale=255.0)


@FORMATS.register("semanticstf")
class SemanticStfFormat(SequenceSplitFormat):
    name = "semanticstf"
    title = "SemanticSTF"
    layout = "{train,val,test}/{velodyne,labels}/ (5 float32 per point), semanticstf.yaml"
    needs = "the SemanticSTF release as unpacked (no sequences/ folder)"
    detection = "a train/, val/ or test/ folder with velodyne/"
    detect_priority = 31
    label_map = "semanticstf"
    split_note = "train / val folders; few-shot: every k-th frame of train/"
    miou_convention = "absent-as-zero"  # SemanticKITTI-style labels, so its rule (its own evaluator unverified here)
    cameras = poses = False
    train_sequences, val_sequences = ("train",), ("val",)
    detector = staticmethod(is_semanticstf)
    reader = staticmethod(open_semanticstf)


__all__ = ["SemanticStfFormat", "is_semanticstf", "open_semanticstf"]
