"""Shared fixtures: the real sample frames of ../shared/data (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEAL_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def shared(name: str) -> Path:
    """Path of a real fixture; the test is skipped (loudly) when the shared data folder is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real fixture {path} not found (set SEAL_SHARED_DATA to the shared/data folder)")
    return path


@pytest.fixture(scope="session")
def nuscenes_root() -> Path:
    return shared("nuscenes-keyframe")


@pytest.fixture(scope="session")
def semantickitti_tiny() -> Path:
    return shared("semantickitti-tiny")


@pytest.fixture(scope="session")
def kitti_frame() -> Path:
    return shared("kitti-frame")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic dataset (2 sequences x 4 frames, 2 cameras), generated once per test session."""
    from seal.synth import generate_dataset

    root = tmp_path_factory.mktemp("synthetic") / "synth"
    return generate_dataset(root, sequences=2, frames=4, seed=7, cameras=2, image_width=320, azimuth_steps=1024,
                            progress=False)


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` are skipped cleanly on machines without a CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run bench/device_check.sh on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
