"""Deterministic procedural textures: value noise keyed by primitive, facade windows, slats.

Noise is a function of the hit point in the primitive's own frame and of the primitive's key, so a surface
keeps its texture from frame to frame (also on moving objects) and between cameras.
"""

from __future__ import annotations

import numpy as np


def _mix(h: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) value from a uint32 lattice code (an integer avalanche hash)."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    return h.astype(np.float64) * (1.0 / 4294967296.0)


_PRIMES = (np.uint32(0x8DA6B343), np.uint32(0xD8163841), np.uint32(0xCB1AB31F))


def value_noise(p: np.ndarray, key: np.ndarray, scale: float) -> np.ndarray:
    """Smooth 3D value noise in [-1, 1] at points ``p`` (N, 3), lattice spacing ``scale`` metres."""
    q = p / scale
    i = np.floor(q)
    f = q - i
    f = f * f * (3.0 - 2.0 * f)
    k = key.astype(np.uint32) * np.uint32(0x9E3779B1)
    # lattice codes of the two corners along each axis: (i + 1) * prime == i * prime + prime (mod 2^32)
    codes = []
    for ax in range(3):
        c0 = i[:, ax].astype(np.int64).astype(np.uint32) * _PRIMES[ax]
        codes.append((c0, c0 + _PRIMES[ax]))
    (x0, x1), (y0, y1), (z0, z1) = codes
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    lerp = _lerp
    out = lerp(
        lerp(
            lerp(_mix(x0 ^ y0 ^ z0 ^ k), _mix(x1 ^ y0 ^ z0 ^ k), fx),
            lerp(_mix(x0 ^ y1 ^ z0 ^ k), _mix(x1 ^ y1 ^ z0 ^ k), fx),
            fy,
        ),
        lerp(
            lerp(_mix(x0 ^ y0 ^ z1 ^ k), _mix(x1 ^ y0 ^ z1 ^ k), fx),
            lerp(_mix(x0 ^ y1 ^ z1 ^ k), _mix(x1 ^ y1 ^ z1 ^ k), fx),
            fy,
        ),
        fz,
    )
    return 2.0 * out - 1.0


def _lerp(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a + (b - a) * w


def fbm(p: np.ndarray, key: np.ndarray, scale: float) -> np.ndarray:
    """Two octaves of value noise (coarse + fine), in about [-1, 1]."""
    return 0.65 * value_noise(p, key, scale) + 0.35 * value_noise(p, key + np.uint32(7919), scale / 3.7)


def windows(u: np.ndarray, z: np.ndarray, top: np.ndarray) -> np.ndarray:
    """True on the window panes of a facade (u: horizontal facade coordinate, z: height above ground)."""
    fu = np.mod(u, 3.2) / 3.2
    fz = np.mod(z, 3.0) / 3.0
    return (fu > 0.25) & (fu < 0.70) & (fz > 0.35) & (fz < 0.80) & (z > 2.0) & ~top


def slats(u: np.ndarray) -> np.ndarray:
    """0/1 stripes every 0.3 m along ``u`` (fence boards, the ribs of a cargo box)."""
    return (np.mod(u, 0.3) < 0.12).astype(np.float64)
