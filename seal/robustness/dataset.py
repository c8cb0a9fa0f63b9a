"""A corrupted copy of a dataset on disk, in the SemanticKITTI layout with the source's label map, so every seal
command reads it back (`seal corrupt`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seal.core.atomic import write_text_atomic
from seal.core.errors import SealError
from seal.core.frame import Dataset, Frame
from seal.core.labelmap import LabelMap
from seal.data.semantickitti_writer import SequenceWriter
from seal.robustness.registry import check_corruption, corrupt_frame, get_corruption

RECORD_FILE = "seal_corruption.json"
_RECORD_KEYS = ("source", "corruption", "severity", "seed")


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".")
    return safe or "_"


def label_map_yaml(label_map: LabelMap) -> str:
    """``label_map`` in the YAML schema of seal/data/labelmaps/*.yaml (loads back to the same lookup)."""
    size = label_map.lookup.shape[0]
    raw_to_train: dict[int, str] = {}
    for raw in range(size):
        train = int(label_map.lookup[raw])
        if train or raw in label_map.raw_names or raw in (0, size - 1):
            raw_to_train[raw] = label_map.class_names[train - 1] if train else "ignore"
    spec = {"name": label_map.name,
            "classes": [{"name": n, "color": [int(c) for c in col]}
                        for n, col in zip(label_map.class_names, label_map.colors, strict=True)],
            "raw_to_train": raw_to_train,
            "raw_names": {int(k): v for k, v in sorted(label_map.raw_names.items())}}
    return f"# label map of the source dataset, written by seal corrupt\n{yaml.safe_dump(spec, sort_keys=False)}"


def _raw_ids(frame: Frame, label_map: LabelMap) -> np.ndarray:
    """Raw ids to store: the frame's where they map to its train labels and fit 16 bits, else one that does."""
    lookup = label_map.lookup
    ignore = np.flatnonzero(lookup == 0)
    ignore_raw = int(ignore[0]) if ignore.size else int(lookup.shape[0])
    inverse = np.full(label_map.num_classes + 1, ignore_raw, dtype=np.int64)
    for c in range(1, label_map.num_classes + 1):
        ids = np.flatnonzero(lookup == c)
        inverse[c] = ids[0] if ids.size else ignore_raw
    labels = np.asarray(frame.labels, dtype=np.int64)
    raw = inverse[labels] if frame.raw_labels is None else np.asarray(frame.raw_labels, dtype=np.int64).copy()
    bad = (raw < 0) | (raw > 0xFFFF)
    bad |= label_map.to_train(np.where(bad, ignore_raw, raw)) != labels
    raw[bad] = inverse[labels[bad]]
    return raw


def _calibration(frame: Frame) -> tuple[list[np.ndarray], np.ndarray]:
    """P0..P3 and Tr from the first camera (identity-based without a usable one): the LiDAR -> cam0 transform."""
    tr, K = np.eye(4), np.eye(3)
    if frame.cameras:
        cam = frame.cameras[0]
        cand = np.asarray(cam.lidar_to_cam, dtype=np.float64)
        if cand.shape == (4, 4) and np.isfinite(cand).all() and abs(np.linalg.det(cand[:3, :3])) > 1e-6:
            tr, K = cand, np.asarray(cam.K, dtype=np.float64)
    return [K @ np.eye(3, 4)] * 4, tr


def corrupt_dataset(dataset: Dataset, name: str, severity: str, out: str | Path, seed: int = 0,
                    progress: bool = True) -> Path:
    """Write every frame of ``dataset`` corrupted, in the SemanticKITTI layout, under ``out``; returns ``out``.

    ``open_dataset(out)`` reads back the corrupted points, train labels (through ``out/label_map.yaml``, the source
    label map), instances and LiDAR poses. Images are not copied. A folder holding another corruption is refused.
    """
    check_corruption(name, severity)
    out = Path(out).expanduser()
    needs_labels = get_corruption(name).needs_labels
    if needs_labels and not dataset.has_labels:
        raise SealError(f"{dataset.root}: the corruption {name!r} needs per-point labels ({needs_labels}) and "
                        "this dataset has none")
    record: dict[str, Any] = {"source": str(Path(dataset.root).resolve()), "corruption": name,
                              "severity": severity, "seed": int(seed)}
    if out.exists() and not out.is_dir():
        raise SealError(f"{out}: exists and is not a folder; choose another output folder")
    if out.is_dir() and any(out.iterdir()):
        old = None
        if (out / RECORD_FILE).is_file():
            try:
                old = json.loads((out / RECORD_FILE).read_text())
            except (OSError, ValueError):
                old = None
        if not isinstance(old, dict) or any(old.get(k) != record[k] for k in _RECORD_KEYS):
            what = f"{old.get('corruption')}:{old.get('severity')}" if isinstance(old, dict) else "other files"
            raise SealError(f"{out}: holds {what}, not {name}:{severity} of {record['source']} (seed {seed}); "
                            "choose an empty output folder or delete this one")
    folders = [_safe_name(s.name) for s in dataset.sequences]
    if len(set(folders)) != len(folders):
        raise SealError(f"{dataset.root}: sequence names collide once made safe for folder names: {folders}")
    write_text_atomic(out / RECORD_FILE, json.dumps({**record, "complete": False}, indent=2) + "\n")
    write_text_atomic(out / "label_map.yaml", label_map_yaml(dataset.label_map))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(dataset), desc=f"corrupt {name}:{severity}", unit="frame", disable=not progress)
    before = after = 0
    for seq, folder in zip(dataset.sequences, folders, strict=True):
        writer = SequenceWriter(out, folder)
        names = [_safe_name(f) for f in seq.frame_names]
        if len(set(names)) != len(names):
            raise SealError(f"{dataset.root}: frame names of sequence {seq.name} collide once made safe")
        poses, times, projections, tr = {}, {}, [], np.eye(4)
        for i, stem in enumerate(names):
            frame = seq[i]
            if i == 0:
                projections, tr = _calibration(frame)
            bad = corrupt_frame(frame, name, severity, dataset.label_map, seed)
            raw = inst = None
            if seq.has_labels or bad.labels is not None:
                if bad.labels is None:
                    bad.labels = np.zeros(bad.num_points, dtype=np.uint8)
                raw = _raw_ids(bad, dataset.label_map)
                inst = np.zeros_like(raw) if bad.instances is None else np.asarray(bad.instances)
            writer.write_scan(stem, bad.points, raw, inst)
            poses[stem], times[stem] = np.asarray(bad.pose, dtype=np.float64), float(bad.timestamp)
            before, after = before + frame.num_points, after + bad.num_points
            bar.update(1)
        order = sorted(names)  # the reader lists scans sorted by name
        inv_tr = np.linalg.inv(tr)
        writer.write_meta(projections, tr, [tr @ poses[s] @ inv_tr for s in order], [times[s] for s in order])
    bar.close()
    write_text_atomic(out / RECORD_FILE, json.dumps({**record, "complete": True, "frames": len(dataset),
                                                     "points_before": before, "points_after": after},
                                                    indent=2) + "\n")
    return out


__all__ = ["RECORD_FILE", "corrupt_dataset", "label_map_yaml"]
