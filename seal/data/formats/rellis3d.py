"""RELLIS-3D: ``NNNNN/os1_cloud_node_kitti_bin`` + ``os1_cloud_node_semantickitti_label_id``, ``poses.txt``, and
the LiDAR frame lists ``pt_{train,val,test}.lst`` at the root (or all of it inside ``Rellis-3D/``)."""

from __future__ import annotations

from pathlib import Path

from seal.core.errors import DataError
from seal.core.frame import Dataset, Sequence
from seal.core.labelmap import LabelMap
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import children, intensity_scale, resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout, open_scan_sequence

RELLIS = ScanLayout(scan_dir="os1_cloud_node_kitti_bin", label_dirs=("os1_cloud_node_semantickitti_label_id",),
                    calib=False, poses="lidar")
RELLIS_LISTS = {"train": "pt_train.lst", "val": "pt_val.lst", "test": "pt_test.lst"}


def _rellis_root(root: Path) -> Path:
    nested = root / "Rellis-3D"
    return nested if nested.is_dir() and not children(root, RELLIS.scan_dir) else root


def is_rellis3d(root: Path) -> bool:
    return bool(children(_rellis_root(root), RELLIS.scan_dir))


def rellis_lists(root: Path) -> dict[str, dict[str, set[str]]]:
    """{split: {sequence: frame stems}} from the ``pt_<split>.lst`` files (first column: the scan's relative path,
    ``SEQ/os1_cloud_node_kitti_bin/NNNNNN.bin``) at the dataset root or inside ``Rellis-3D/``."""
    out: dict[str, dict[str, set[str]]] = {}
    for split, name in RELLIS_LISTS.items():
        path = next((p for p in (root / name, _rellis_root(root) / name) if p.is_file()), None)
        if path is None:
            continue
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            parts = Path(line.split()[0]).parts
            if len(parts) < 3:
                raise DataError(path, f"line {line!r} is not SEQ/<scan folder>/NAME.bin")
            out.setdefault(split, {}).setdefault(parts[-3], set()).add(Path(parts[-1]).stem)
    return out


def open_rellis3d(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    """Sequences 00000..00004; with the split lists present, each is cut into ``SEQ-train``, ``SEQ-val`` and
    ``SEQ-test`` (frames no list names stay in ``SEQ``), so the official split is one of sequence names."""
    data = _rellis_root(root)
    lmap = resolve_label_map(root, label_map, "rellis3d")
    dirs = children(data, RELLIS.scan_dir)
    scale, note = intensity_scale(dirs, RELLIS)
    base = sequences_dataset(root, "rellis3d", dirs, lmap, RELLIS, scale=scale)
    base.notes.append(note)
    lists = rellis_lists(root)
    if not lists:
        return base
    seqs: list[Sequence] = []
    for seq_dir, whole in zip(dirs, base.sequences, strict=True):
        listed: set[str] = set()
        for split in RELLIS_LISTS:
            frames = lists.get(split, {}).get(seq_dir.name, set()) & set(whole.frame_names)
            listed |= frames
            if frames:
                seqs.append(open_scan_sequence(seq_dir, lmap, RELLIS, name=f"{seq_dir.name}-{split}", frames=frames,
                                               intensity_scale=scale))
        rest = set(whole.frame_names) - listed
        if rest:
            seqs.append(open_scan_sequence(seq_dir, lmap, RELLIS, frames=rest, intensity_scale=scale))
    base.sequences = seqs
    base.notes.append("split into SEQ-train / SEQ-val / SEQ-test by pt_*.lst")
    return base


@FORMATS.register("rellis3d")
class Rellis3dFormat(SequenceSplitFormat):
    name = "rellis3d"
    title = "RELLIS-3D"
    layout = "NNNNN/{os1_cloud_node_kitti_bin,os1_cloud_node_semantickitti_label_id}/, poses.txt, pt_*.lst"
    needs = "the LiDAR SemanticKITTI-format scans, their labels, the poses and the LiDAR split files (pt_*.lst)"
    detection = "NNNNN/os1_cloud_node_kitti_bin/ (or Rellis-3D/NNNNN/...)"
    detect_priority = 32
    label_map = "rellis3d"
    split_note = "pt_train.lst / pt_val.lst (sequences SEQ-train / SEQ-val); few-shot: every k-th listed frame"
    miou_convention = "absent-as-zero"  # SemanticKITTI-format labels; benchmarked with KITTI codebases (unverified)
    cameras = False
    detector = staticmethod(is_rellis3d)
    reader = staticmethod(open_rellis3d)

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        names = [s.name for s in dataset.sequences]
        train = tuple(n for n in names if n.endswith("-train"))
        return splits.sequence_split(dataset, fraction, train, [n for n in names if n.endswith("-val")])


__all__ = ["Rellis3dFormat", "is_rellis3d", "open_rellis3d", "rellis_lists"]
