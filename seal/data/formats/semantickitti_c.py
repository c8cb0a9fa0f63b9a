"""SemanticKITTI-C (Robo3D) as released: ``<corruption>/<severity>/{velodyne,labels}/``, no calibration or poses."""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.formats.robo3d import released_folders
from seal.data.scans import ScanLayout

ROBO3D_KITTI = ScanLayout(calib=False, poses="none")


def is_semantickitti_c(root: Path) -> bool:
    return bool(released_folders(root, Path("velodyne")))


def open_semantickitti_c(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    """Every ``<corruption>/<severity>`` folder under ``root`` as a sequence ``<corruption>-<severity>``, or
    ``root`` itself when it is one such folder (``velodyne/`` + ``labels/``)."""
    lmap = resolve_label_map(root, label_map, "semantickitti")
    folders = released_folders(root, Path("velodyne"))
    if folders:
        return sequences_dataset(root, "semantickitti-c", [f for _, _, f in folders], lmap, ROBO3D_KITTI,
                                 names=[f"{c}-{s}" for c, s, _ in folders])
    return sequences_dataset(root, "semantickitti-c", [root] if (root / "velodyne").is_dir() else [], lmap,
                             ROBO3D_KITTI, names=[f"{root.parent.name}-{root.name}"])


@FORMATS.register("semantickitti-c")
class SemanticKittiCFormat(SequenceSplitFormat):
    name = "semantickitti-c"
    title = "SemanticKITTI-C (Robo3D)"
    layout = "<corruption>/<light|moderate|heavy>/{velodyne,labels}/"
    needs = "the Robo3D SemanticKITTI-C release (OpenDataLab); evaluate.robustness_root points at it"
    detection = "<corruption>/<severity>/velodyne/ with Robo3D corruption names"
    detect_priority = 20
    label_map = "semantickitti"
    split_note = "evaluation only (all frames of each corruption/severity)"
    miou_convention = "absent-as-zero"  # SemanticKITTI's rule (how Robo3D scored it: unverified here)
    robustness_baseline = "semantickitti"
    cameras = poses = False
    detector = staticmethod(is_semantickitti_c)
    reader = staticmethod(open_semantickitti_c)


__all__ = ["SemanticKittiCFormat", "is_semantickitti_c", "open_semantickitti_c"]
