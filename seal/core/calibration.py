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
