"""Low-level readers of the file formats the datasets use; each failure names the file and the problem."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import numpy as np

from seal.core.errors import DataError

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters of glibc's malloc.h
_heap_policy: bool | None = None  # whether keep_freed_memory() changed the policy (None: not asked yet)


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Let glibc keep freed blocks below ``mmap_threshold`` in the heap (up to ``trim_threshold`` free at its top)
    instead of handing them back to the kernel; once per process (forked loader workers inherit it).

    Why: a pretraining sample decodes six camera images and six superpixel maps, allocating and freeing some
    twenty buffers of 1-6 MB. Under glibc's default policy (how much depends on the process's history) freed
    buffers are unmapped or trimmed and the next ones page-fault every page back in: ~4,900 faults per 1600x900
    image in a fresh process, which made a nuScenes JPEG decode 4x slower (bench/bench_loader.py). The cost is
    up to ``trim_threshold`` bytes of idle heap per process. Does nothing (returns False) outside glibc, or when
    the environment already sets a policy (MALLOC_*_ or GLIBC_TUNABLES).
    """
    global _heap_policy
    if _heap_policy is None:
        _heap_policy = _set_heap_policy(mmap_threshold, trim_threshold)
    return _heap_policy


def _set_heap_policy(mmap_threshold: int, trim_threshold: int) -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def read_points(path: Path, columns: int = 4, keep: int = 4) -> np.ndarray:
    """Read a float32 point file of ``columns`` values per point; return the first ``keep`` as Nx``keep``."""
    if not path.is_file():
        raise DataError(path, "point file not found")
    size = path.stat().st_size
    if size % (4 * columns):
        raise DataError(path, f"size {size} bytes is not a multiple of {4 * columns} "
                              f"({columns} float32 per point): the file is truncated or not a point file")
    data = np.fromfile(path, dtype=np.float32).reshape(-1, columns)[:, :keep]
    bad = ~np.isfinite(data[:, :3]).all(axis=1)
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} of {len(data)} points have NaN or infinite coordinates "
                              f"(first at point {int(np.flatnonzero(bad)[0])})",
                        "repair or drop these points before using the file")
    return np.ascontiguousarray(data)


def point_count(path: Path, columns: int = 4) -> int:
    """Number of points of a float32 point file, from its size alone."""
    try:
        return path.stat().st_size // (4 * columns)
    except FileNotFoundError:
        raise DataError(path, "point file not found", "the dataset lists it; restore the file or re-download "
                        "the scans") from None


def read_semantickitti_labels(path: Path, num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(semantic ids, instance ids) of a SemanticKITTI ``.label`` file checked against the scan length."""
    if not path.is_file():
        raise DataError(path, "label file not found")
    size = path.stat().st_size
    if size % 4:
        raise DataError(path, f"size {size} bytes is not a multiple of 4 (one uint32 per point)")
    raw = np.fromfile(path, dtype=np.uint32)
    if raw.shape[0] != num_points:
        raise DataError(path, f"holds {raw.shape[0]} labels but the scan has {num_points} points",
                        "the label file does not belong to this scan")
    return (raw & 0xFFFF).astype(np.int64), (raw >> 16).astype(np.int64)


def read_image(path: Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB image as HxWx3 uint8, optionally checked against the (width, height) the calibration expects."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(path, "image file not found")
    try:
        with Image.open(path) as img:  # convert() of an RGB image would only copy it
            array = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(path, f"cannot be decoded as an image: {err}") from err
    if expect_size is not None and (array.shape[1], array.shape[0]) != tuple(expect_size):
        raise DataError(path, f"is {array.shape[1]}x{array.shape[0]} px but {expect_size[0]}x{expect_size[1]} "
                              "was expected")
    return array


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(path, "image file not found")
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(path, f"cannot be read as an image: {err}") from err


def read_kitti_calib(path: Path) -> dict[str, np.ndarray]:
    """The ``KEY: v1 v2 ...`` lines of a KITTI-style calibration file as float arrays."""
    if not path.is_file():
        raise DataError(path, "calibration file not found")
    out: dict[str, np.ndarray] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, values = line.partition(":")
        try:
            if not sep:
                raise ValueError("no ':' separator")
            out[key.strip()] = np.array([float(v) for v in values.split()], dtype=np.float64)
        except ValueError as err:
            raise DataError(path, f"line {number} is not 'KEY: numbers' ({err})") from err
    return out


def to_homogeneous(matrix: np.ndarray, path: Path, key: str) -> np.ndarray:
    """A 3x4 (12 values) or 4x4 (16 values) rigid transform as a checked, invertible 4x4 matrix."""
    if matrix.size not in (12, 16):
        raise DataError(path, f"{key} has {matrix.size} values, expected 12 (3x4) or 16 (4x4)")
    out = np.eye(4)
    out[: matrix.size // 4] = matrix.reshape(-1, 4)
    check_rigid(out, path, key)
    return out


RIGID_TOLERANCE = 1e-2  # |R^T R - I| allowed in a rotation read from text (rounded to ~6 digits in KITTI files)


def check_rigid(transform: np.ndarray, path: Path | str, key: str,
                hint: str = "the calibration is corrupt; re-export it") -> None:
    """Fail clearly when a transform is singular or not finite (a broken calibration)."""
    rot = transform[:3, :3]
    if not np.isfinite(transform).all():
        raise DataError(path, f"{key} contains NaN or infinite values", hint)
    det = float(np.linalg.det(rot))
    if abs(det) < 1e-6:
        raise DataError(path, f"{key} is not invertible (determinant of its 3x3 part is {det:.3g})",
                        hint)
    error = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if error > RIGID_TOLERANCE or det < 0:
        raise DataError(path, f"{key} is not a rigid transform (its 3x3 part is "
                              + ("a reflection" if det < 0 else f"not a rotation: |R^T R - I| = {error:.3g}")
                              + "; a sensor moves without scaling, shearing or mirroring)", hint)


def read_poses(path: Path, count: int) -> np.ndarray:
    """``count`` 4x4 poses from a KITTI ``poses.txt`` (one 3x4 row-major matrix per line)."""
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataError(path, f"is not a table of numbers: {err}") from err
    if values.shape[1] != 12:
        raise DataError(path, f"has {values.shape[1]} values per line, expected 12 (a 3x4 matrix)")
    if values.shape[0] != count:
        raise DataError(path, f"has {values.shape[0]} poses but the sequence has {count} scans")
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, :] = values.reshape(-1, 3, 4)
    for line, pose in enumerate(poses, start=1):
        check_rigid(pose, path, f"line {line} (the pose of scan {line - 1})",
                    "the poses are corrupt; re-export them or remove poses.txt")
    return poses


def read_times(path: Path, count: int) -> np.ndarray:
    """``count`` timestamps (seconds) from a KITTI ``times.txt``, one per scan, finite and never decreasing."""
    try:
        times = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as err:
        raise DataError(path, f"is not a column of numbers: {err}") from err
    if times.ndim != 1:
        raise DataError(path, f"has {times.shape[1]} values per line, expected 1 (seconds)")
    if times.shape[0] != count:
        raise DataError(path, f"has {times.shape[0]} times but the sequence has {count} scans")
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        raise DataError(path, f"line {bad[0] + 1} is not a finite time")
    back = np.flatnonzero(np.diff(times) < 0)
    if back.size:
        raise DataError(path, f"line {back[0] + 2} goes back in time ({times[back[0] + 1]} after {times[back[0]]})",
                        "times.txt must list one time per scan in scan order")
    return times
