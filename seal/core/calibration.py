"""Camera calibration helpers shared by the KITTI-family readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.linalg import rq

from seal.core.errors import DataError


def decompose_projection(P: np.ndarray, path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a 3x4 projection P = K [R | t] into intrinsics K (3x3) and a 4x4 rigid transform [R | t].

    KITTI's rectified cameras have an upper-triangular left block (R = I), but a general P (a rotated
    camera of a ring) needs the RQ decomposition; signs are fixed so K has a positive diagonal.
    """
    P = P.reshape(3, 4)
    M = P[:, :3]
    if not np.isfinite(P).all() or abs(np.linalg.det(M)) < 1e-9 * max(1.0, np.abs(M).max() ** 3):
        raise DataError(path, f"{key} is not a valid camera projection (its 3x3 part is singular)",
                        "the calibration is corrupt; re-export it")
    K, R = rq(M)
    signs = np.diag(np.sign(np.diag(K)))
    K, R = K @ signs, signs @ R
    t = np.linalg.solve(K, P[:, 3])
    if np.linalg.det(R) < 0:  # P was given up to a negative scale
        R, t = -R, -t
    scale = K[2, 2]
    K = K / scale
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return K, T


PRINCIPAL_POINT_RANGE = (0.3, 0.7)  # where a camera's principal point may lie, as a fraction of the image size


def check_camera(K: np.ndarray, width: int, height: int, path: Path | str, key: str = "K",
                 image: Path | str | None = None) -> np.ndarray:
    """``K`` as a checked 3x3 float matrix of a ``width`` x ``height`` image, or a DataError naming ``path``.

    A pinhole K has positive focal lengths, a last row (0, 0, 1) and its principal point near the image centre
    (every driving dataset's cameras have it within 30-70% of the width and height): an image resized or cropped
    after calibration puts it far off (half-size images put it on the bottom-right corner), and would pair the
    points with the wrong pixels or with none. ``image``: the image file whose size was read, named in the error."""
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, f"{key} is not a 3x3 matrix of numbers") from None
    if K.shape != (3, 3):
        raise DataError(path, f"{key} has shape {K.shape}, expected a 3x3 camera matrix")
    if not np.isfinite(K).all():
        raise DataError(path, f"{key} contains NaN or infinite values", "the calibration is corrupt; re-export it")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1], atol=1e-6):
        raise DataError(path, f"{key} is not a pinhole camera matrix (focal lengths {K[0, 0]:g}, {K[1, 1]:g} must be "
                              f"> 0 and the last row (0, 0, 1), got {K[2].tolist()})")
    if width < 1 or height < 1:
        raise DataError(image or path, f"has an image size of {width}x{height} px")
    low, high = PRINCIPAL_POINT_RANGE
    u, v = K[0, 2] / width, K[1, 2] / height
    if not (low <= u <= high and low <= v <= high):
        raise DataError(image or path, f"is {width}x{height} px, but the principal point of its calibration "
                                       f"({key} in {path}: cx={K[0, 2]:g}, cy={K[1, 2]:g}) lies at {u:.0%}, {v:.0%} "
                                       "of it, not near the centre: the image does not match its calibration",
                        "was it resized or cropped after calibration? use the original images or recalibrate")
    return K
