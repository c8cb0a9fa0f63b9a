"""What the formats stored like SemanticKITTI share: the label map a folder asks for, and datasets made of
sequence folders read by `seal.data.scans` (each format states its `ScanLayout` and where its sequences are)."""

from __future__ import annotations

from pathlib import Path

from seal.core.errors import DataError
from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap, load_label_map
from seal.data.scans import KITTI, ScanLayout, detect_intensity_scale, first_scan, open_scan_sequence

LABEL_MAP_FILE = "label_map.yaml"


def resolve_label_map(root: Path, label_map: str | Path | LabelMap | None, default: str) -> LabelMap:
    """The label map named (a packaged name, a YAML path or a loaded map), else ``ROOT/label_map.yaml`` when the
    dataset carries its own (seal writes one next to the data it derives), else the packaged ``default``."""
    if isinstance(label_map, LabelMap):
        return label_map
    if label_map is None:
        label_map = root / LABEL_MAP_FILE if (root / LABEL_MAP_FILE).is_file() else default
    return load_label_map(label_map)


def open_sequences(root: Path, label_map: str | Path | LabelMap | None = None, layout: ScanLayout = KITTI,
                   kind: str = "semantickitti", default_map: str = "semantickitti") -> Dataset:
    """Every sequence under ``root/sequences`` (the SemanticKITTI layout; label map: see `resolve_label_map`)."""
    lmap = resolve_label_map(root, label_map, default_map)
    seq_dirs = sorted(p.parent for p in (root / "sequences").glob(f"*/{layout.scan_dir}") if p.is_dir())
    seqs = [open_scan_sequence(d, lmap, layout) for d in seq_dirs]
    return Dataset(root=root, kind=kind, sequences=seqs, label_map=lmap)


def sequences_dataset(root: Path, kind: str, seq_dirs: list[Path], lmap: LabelMap, layout: ScanLayout,
                      scale: float | None = 1.0, names: list[str] | None = None) -> Dataset:
    """Sequences of ``seq_dirs`` (named ``names``, default their folder names); ``scale=None`` detects the
    intensity range from the first scan."""
    if not seq_dirs:
        raise DataError(root, f"holds no sequence folder with {layout.scan_dir}/ scans for the {kind} layout")
    notes = []
    if scale is None:
        scale, note = intensity_scale(seq_dirs, layout)
        notes.append(note)
    names = names or [d.name for d in seq_dirs]
    seqs = [open_scan_sequence(d, lmap, layout, name=n, intensity_scale=scale) for d, n in zip(seq_dirs, names,
                                                                                                 strict=True)]
    return Dataset(root=root, kind=kind, sequences=seqs, label_map=lmap, notes=notes)


def intensity_scale(seq_dirs: list[Path], layout: ScanLayout) -> tuple[float, str]:
    """The intensity divisor detected on the first scan of ``seq_dirs``, and a note saying so."""
    scan = first_scan(seq_dirs, layout)
    scale = detect_intensity_scale(scan, layout) if scan is not None else 1.0
    return scale, f"intensity divided by {scale:g} (range detected on {scan.name if scan else 'no scan'})"


def children(root: Path, marker: str) -> list[Path]:
    """The sub-folders of ``root`` holding a ``marker`` folder, sorted."""
    return sorted(p.parent for p in root.glob(f"*/{marker}") if p.is_dir())


__all__ = ["LABEL_MAP_FILE", "resolve_label_map", "open_sequences", "sequences_dataset", "intensity_scale",
           "children"]
