"""Readers of the datasets stored like SemanticKITTI, each in the layout its authors release.

- ScribbleKITTI: SemanticKITTI with ``sequences/NN/scribbles/*.label`` (training sequences); sequences without
  scribbles (08, validation) keep their dense ``labels/``.
- SemanticPOSS: ``sequences/00..05/{velodyne,labels}``; calibration and poses are not read.
- SemanticSTF: ``{train,val,test}/{velodyne,labels}`` (5 float32 per point, intensity 0..255), one sequence per split.
- SynLiDAR: ``NN/{velodyne,labels}`` at the root as released (or ``sequences/NN/...`` as re-organised), 00..12.
- RELLIS-3D: ``NNNNN/os1_cloud_node_kitti_bin`` + ``os1_cloud_node_semantickitti_label_id``, ``poses.txt``, and the
  frame lists ``pt_{train,val,test}.lst`` at the root.
- DAPS-3D: ``data/NN/{clouds,labels}`` (DAPS-1).
- Synth4D: ``{kitti_synth,nuscenes_synth}/<Town>/{velodyne,labels}/NNNNNN.npy``.
- SemanticKITTI-C (Robo3D): ``<corruption>/<severity>/{velodyne,labels}``.
"""

from __future__ import annotations

from pathlib import Path

from seal.core.errors import DataError
from seal.core.frame import Dataset, Sequence
from seal.core.labelmap import LabelMap
from seal.data.nuscenes_c import released_folders
from seal.data.scans import ScanLayout, detect_intensity_scale, first_scan, open_scan_sequence
from seal.data.semantickitti import open_semantickitti, resolve_label_map

SCRIBBLES = ScanLayout(label_dirs=("scribbles", "labels"))
POSS = ScanLayout(calib=False, poses="none")
STF = ScanLayout(columns=5, calib=False, poses="none")
SYNLIDAR = ScanLayout(calib=False, poses="none")
RELLIS = ScanLayout(scan_dir="os1_cloud_node_kitti_bin", label_dirs=("os1_cloud_node_semantickitti_label_id",),
                    calib=False, poses="lidar")
DAPS = ScanLayout(scan_dir="clouds", calib=False, poses="none")
SYNTH4D = ScanLayout(suffix=".npy", label_suffix=".npy", calib=False, poses="none")
ROBO3D_KITTI = ScanLayout(calib=False, poses="none")

STF_SPLITS = ("train", "val", "test")
SYNTH4D_SETS = ("kitti_synth", "nuscenes_synth")
RELLIS_LISTS = {"train": "pt_train.lst", "val": "pt_val.lst", "test": "pt_test.lst"}


def _dataset(root: Path, kind: str, seq_dirs: list[Path], lmap: LabelMap, layout: ScanLayout,
             scale: float | None = 1.0, names: list[str] | None = None) -> Dataset:
    """Sequences of ``seq_dirs``; ``scale=None`` detects the intensity range from the first scan."""
    if not seq_dirs:
        raise DataError(root, f"holds no sequence folder with {layout.scan_dir}/ scans for the {kind} layout")
    notes = []
    if scale is None:
        scale, note = _intensity_scale(seq_dirs, layout)
        notes.append(note)
    names = names or [d.name for d in seq_dirs]
    seqs = [open_scan_sequence(d, lmap, layout, name=n, intensity_scale=scale) for d, n in zip(seq_dirs, names,
                                                                                                 strict=True)]
    return Dataset(root=root, kind=kind, sequences=seqs, label_map=lmap, notes=notes)


def _intensity_scale(seq_dirs: list[Path], layout: ScanLayout) -> tuple[float, str]:
    """The intensity divisor detected on the first scan of ``seq_dirs``, and a note saying so."""
    scan = first_scan(seq_dirs, layout)
    scale = detect_intensity_scale(scan, layout) if scan is not None else 1.0
    return scale, f"intensity divided by {scale:g} (range detected on {scan.name if scan else 'no scan'})"


def _children(root: Path, marker: str) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/{marker}") if p.is_dir())


def open_scribblekitti(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    return open_semantickitti(root, label_map, SCRIBBLES, kind="scribblekitti", default_map="scribblekitti")


def open_semanticposs(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "semanticposs")
    return _dataset(root, "semanticposs", _children(root / "sequences", "velodyne"), lmap, POSS, scale=None)


def is_semanticstf(root: Path) -> bool:
    return any((root / split / "velodyne").is_dir() for split in STF_SPLITS)


def open_semanticstf(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "semanticstf")
    dirs = [root / s for s in STF_SPLITS if (root / s / "velodyne").is_dir()]
    return _dataset(root, "semanticstf", dirs, lmap, STF, scale=255.0)


def _synlidar_dirs(root: Path) -> list[Path]:
    return _children(root / "sequences", "velodyne") or [d for d in _children(root, "velodyne") if d.name.isdigit()]


def is_synlidar(root: Path) -> bool:
    return (root / "annotations.yaml").is_file() and bool(_synlidar_dirs(root))


def open_synlidar(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "synlidar")
    return _dataset(root, "synlidar", _synlidar_dirs(root), lmap, SYNLIDAR, scale=None)


def _rellis_root(root: Path) -> Path:
    nested = root / "Rellis-3D"
    return nested if nested.is_dir() and not _children(root, RELLIS.scan_dir) else root


def is_rellis3d(root: Path) -> bool:
    return bool(_children(_rellis_root(root), RELLIS.scan_dir))


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
    dirs = _children(data, RELLIS.scan_dir)
    scale, note = _intensity_scale(dirs, RELLIS)
    base = _dataset(root, "rellis3d", dirs, lmap, RELLIS, scale=scale)
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


def _daps_root(root: Path) -> Path:
    return root / "data" if (root / "data").is_dir() else root


def is_daps3d(root: Path) -> bool:
    return bool(_children(_daps_root(root), DAPS.scan_dir))


def open_daps3d(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "daps3d")
    return _dataset(root, "daps3d", _children(_daps_root(root), DAPS.scan_dir), lmap, DAPS, scale=None)


def _synth4d_root(root: Path, version: str | None) -> Path:
    if version is not None:
        if version not in SYNTH4D_SETS or not (root / version).is_dir():
            raise DataError(root / str(version), "Synth4D set not found", f"choose one of {', '.join(SYNTH4D_SETS)}")
        return root / version
    return next((root / s for s in SYNTH4D_SETS if (root / s).is_dir()), root)


def is_synth4d(root: Path) -> bool:
    return any(any(d.glob("*.npy")) for d in _synth4d_root(root, None).glob("*/velodyne"))


def open_synth4d(root: Path, label_map: str | Path | LabelMap | None = None, version: str | None = None) -> Dataset:
    """One sequence per town of ``kitti_synth`` (HDL-64E) or ``nuscenes_synth`` (HDL-32E; ``version=``)."""
    data = _synth4d_root(root, version)
    lmap = resolve_label_map(root, label_map, "synth4d")
    dataset = _dataset(root, "synth4d", _children(data, "velodyne"), lmap, SYNTH4D, scale=None)
    dataset.notes.insert(0, f"set {data.name}")
    return dataset


def is_semantickitti_c(root: Path) -> bool:
    return bool(released_folders(root, Path("velodyne")))


def open_semantickitti_c(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    """Every ``<corruption>/<severity>`` folder under ``root`` as a sequence ``<corruption>-<severity>``, or
    ``root`` itself when it is one such folder (``velodyne/`` + ``labels/``)."""
    lmap = resolve_label_map(root, label_map, "semantickitti")
    folders = released_folders(root, Path("velodyne"))
    if folders:
        return _dataset(root, "semantickitti-c", [f for _, _, f in folders], lmap, ROBO3D_KITTI,
                        names=[f"{c}-{s}" for c, s, _ in folders])
    return _dataset(root, "semantickitti-c", [root] if (root / "velodyne").is_dir() else [], lmap, ROBO3D_KITTI,
                    names=[f"{root.parent.name}-{root.name}"])


__all__ = ["open_scribblekitti", "open_semanticposs", "open_semanticstf", "open_synlidar", "open_rellis3d",
           "open_daps3d", "open_synth4d", "open_semantickitti_c", "is_semanticstf", "is_synlidar", "is_rellis3d",
           "is_daps3d", "is_synth4d", "is_semantickitti_c", "rellis_lists"]
