"""What the Robo3D releases (SemanticKITTI-C, nuScenes-C) share: their ``<corruption>/<severity>/`` folders.

The corruption names are the folder names the release ships (not `seal corrupt`'s registry of corruptions, which
`seal.data` does not import); the severities are `seal.core.config.SEVERITIES`.
"""

from __future__ import annotations

from pathlib import Path

from seal.core.config import SEVERITIES

ROBO3D_CORRUPTIONS: tuple[str, ...] = ("fog", "wet_ground", "snow", "motion_blur", "beam_missing", "crosstalk",
                                      "incomplete_echo", "cross_sensor")  # the released folder names, in its order


def released_folders(root: Path, marker: Path) -> list[tuple[str, str, Path]]:
    """(corruption, severity, folder) of every ``root/<corruption>/<severity>/`` holding ``marker``, in the order
    of `ROBO3D_CORRUPTIONS` and `SEVERITIES`."""
    return [(c, s, root / c / s) for c in ROBO3D_CORRUPTIONS for s in SEVERITIES if (root / c / s / marker).is_dir()]


__all__ = ["ROBO3D_CORRUPTIONS", "released_folders"]
