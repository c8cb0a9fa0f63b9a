"""Oracle segment maps: what a perfect semantic vision foundation model would give for a rendered image.

The renderer knows the class and instance of the surface every pixel shows (`render_camera(return_ids=True)`),
so the segments of an image follow the panoptic convention of SemanticKITTI, as the paper's semantic VFMs
(SEEM, X-Decoder, OpenSeeD) give them:

- *stuff* (road, parking, sidewalk, terrain, building, fence, vegetation, trunk, pole, traffic-sign): all pixels
  of one class are ONE segment per image, connected or not. Poles, traffic signs and trunks are stuff, as in
  panoptic SemanticKITTI, whose things are only car, bicycle, motorcycle, truck, other-vehicle, person,
  bicyclist and motorcyclist;
- *things* (`materials.THING_IDS`: car, truck, person and their moving variants): one segment per instance;
- the sky (no hit) is 0, "no segment".

Stored as a 16-bit PNG (``sequences/NN/segments_K/NNNNNN.png`` beside ``image_K/``) with stable ids:

    0              none (sky)
    1 .. 255       a stuff segment; the id is its SemanticKITTI raw class id (40 = road, 50 = building, ...)
    256 + i        the thing with instance id i (the instance id of the LiDAR labels, stable across a sequence)
"""

from __future__ import annotations

import numpy as np

from seal.synth import materials as M

THING_BASE = 256  # thing segment ids are THING_BASE + instance id; stuff ids (raw class ids) stay below it
FOLDER_PREFIX = "segments_"  # segments_K holds the maps of image_K
FORMAT = ("sequences/NN/segments_K/NNNNNN.png: uint16 oracle segments of image_K; 0 = sky, 1..255 = one stuff "
          "segment per class (id = raw class id), 256 + i = the thing with instance id i; "
          "sequences/NN/classes_K/NNNNNN.png: uint16 raw class id of every pixel of image_K, 0 = sky")


def oracle_segments(labels: np.ndarray) -> np.ndarray:
    """The uint16 oracle segment map (see the module docstring) of a per-pixel label map.

    ``labels``: semantic id | instance id << 16 per pixel (uint32, 0 for the sky), as `render_camera` returns it.
    """
    labels = np.asarray(labels, dtype=np.uint32)
    sem = (labels & 0xFFFF).astype(np.int64)
    inst = (labels >> 16).astype(np.int64)
    thing = np.isin(sem, list(M.THING_IDS)) & (inst > 0)
    if sem[~thing].max(initial=0) >= THING_BASE:
        raise ValueError(f"stuff class id {int(sem[~thing].max())} does not fit below {THING_BASE}")
    out = sem.copy()  # stuff (and sky = 0) keep their class id
    out[thing] = THING_BASE + inst[thing]
    if out.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"instance id {int(inst.max())} does not fit a uint16 segment id")
    return out.astype(np.uint16)


__all__ = ["FOLDER_PREFIX", "FORMAT", "THING_BASE", "oracle_segments", "pixel_classes"]


def pixel_classes(labels: np.ndarray) -> np.ndarray:
    """The uint16 raw class id of every pixel (0 = sky) of a per-pixel label map (``classes_K/NNNNNN.png``): what
    the oracle teachers (`seal.models.teachers_oracle`) encode."""
    return (np.asarray(labels, dtype=np.uint32) & 0xFFFF).astype(np.uint16)
