"""Test helper: the rendered class of the pixel of every paired, labelled point of a synthetic dataset (read from
the class maps `seal synth --segments` writes), independently of any teacher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seal.core.projection import pair_points
from seal.data import open_dataset
from seal.superpixels.oracle import read_class_map


def pixel_and_point_classes(root: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(class at the pixel, class of the point) per camera image, for every pairing (min depth 1 m)."""
    dataset = open_dataset(root)
    for frame in dataset:
        pairs = pair_points(frame.xyz, frame.cameras, min_depth=1.0)
        for c, camera in enumerate(frame.cameras):
            mine = pairs.camera == c
            truth = read_class_map(camera.image_path, dataset.label_map, (camera.height, camera.width))
            yield (truth[pairs.row[mine], pairs.col[mine]].astype(np.int64),
                   frame.labels[pairs.point[mine]].astype(np.int64))
