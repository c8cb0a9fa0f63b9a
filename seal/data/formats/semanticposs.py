"""SemanticPOSS: ``sequences/00..05/{velodyne,labels}`` (the SemanticKITTI layout; calibration and poses are not
read). It has no marker of its own, so it is opened with ``kind="semanticposs"`` only."""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import children, resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout

POSS = ScanLayout(calib=False, poses="none")


def open_semanticposs(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "semanticposs")
    return sequences_dataset(root, "semanticposs", children(root / "sequences", "velodyne"), lmap, POSS, scale=None)


@FORMATS.register("semanticposs")
class SemanticPossFormat(SequenceSplitFormat):
    name = "semanticposs"
    title = "SemanticPOSS"
    layout = "sequences/00..05/{velodyne,labels}/ (SemanticKITTI layout)"
    needs = "the SemanticPOSS release (scans + labels; its calibration and poses are not read)"
    detection = "--kind semanticposs only (its layout is SemanticKITTI's)"
    detect_priority = 36
    label_map = "semanticposs"
    split_note = "train 00 01 02 04 05, val 03 (as CoSMix); few-shot: every k-th training frame"
    # SemanticKITTI layout and label scheme, so its rule (SemanticPOSS's own evaluator unverified here)
    miou_convention = "absent-as-zero"
    cameras = poses = False
    train_sequences, val_sequences = ("00", "01", "02", "04", "05"), ("03",)
    reader = staticmethod(open_semanticposs)


__all__ = ["SemanticPossFormat", "open_semanticposs"]
