"""The image feature path is aligned with the points: with the oracle teacher (true classes) and every augmentation
on, the teacher feature the losses gather for a pairing encodes the class of the point it is paired with, as often
as projection allows; a crop offset or a flip applied to the image but not to the feature map breaks it.

How the point's class is known without touching the pipeline: the scans' intensities are rewritten on disk as
train id / 100, so the voxel feature (mean intensity) of a voxel whose points share one class *is* that class.
Pairings of voxels with mixed classes are left out. The projection floor is the agreement of the raw frames (no
augmentation): the fraction of projected points whose pixel shows their class (occlusion edges, thin poles).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from seal.core.schemas import PretrainSchema
from seal.core.settings import load_config
from seal.data import open_dataset
from seal.engine.pretrain import pair_samples
from seal.models.teachers import build_image_backbone
from seal.samples import pairs as pairs_module
from seal.samples.pairs import collate_pairs
from tests.paired_classes import pixel_and_point_classes

PRESET = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
EPOCHS = (1, 2, 3, 4)  # x 3 frame pairs: 12 augmented samples, some of them flipped


@pytest.fixture(scope="module")
def labelled_intensity(tmp_path_factory) -> Path:
    """A synthetic dataset with class maps whose scans carry their train id in the intensity channel."""
    from seal.synth import generate_dataset

    root = generate_dataset(tmp_path_factory.mktemp("align") / "d", sequences=1, frames=4, seed=3, cameras=1,
                            image_width=320, azimuth_steps=1024, progress=False, segments=True)
    label_map = open_dataset(root).label_map
    for scan in sorted((root / "sequences" / "00" / "velodyne").glob("*.bin")):
        points = np.fromfile(scan, "<f4").reshape(-1, 4)
        raw = np.fromfile(root / "sequences" / "00" / "labels" / (scan.stem + ".label"), "<u4") & 0xFFFF
        points[:, 3] = label_map.to_train(raw.astype(np.int64)) / 100.0
        points.astype("<f4").tofile(scan)
    return root


def _config(root: Path, tmp: Path) -> PretrainSchema:
    return load_config(PretrainSchema, PRESET, [f"data.path={root}", f"cache.root={tmp / 'cache'}",
                                                "teacher.backbone=oracle", "teacher.model_kwargs={}",
                                                "augment.min_pairings_per_image=64"])


def projection_floor(root: Path) -> float:
    """Agreement of raw frames: pixel class == point class over every projected, labelled point."""
    hits = total = 0
    for pixel_class, point_class in pixel_and_point_classes(root):
        keep = point_class > 0
        hits += int((pixel_class == point_class)[keep].sum())
        total += int(keep.sum())
    return hits / total


def agreement(samples, patch: int = 1) -> tuple[float, int]:
    """Fraction of pairings (pure-class voxels) whose gathered teacher feature names the point's class, over every
    sample of EPOCHS, through collation's flat ``pair_pixel`` index as the losses use it; with ``patch`` > 1 the
    map is a token grid, upsampled bilinearly to the crop as the head H_i does."""
    teacher = build_image_backbone("oracle", None, patch=patch)
    hits = total = 0
    for epoch, index in ((e, i) for e in EPOCHS for i in range(len(samples))):
        batch = collate_pairs([samples[(epoch, index)]])
        maps = teacher(batch.images, batch.truth)
        maps = F.interpolate(maps, size=batch.images.shape[-2:], mode="bilinear", align_corners=False)
        pixels = maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])
        said = teacher.net.classify(pixels[batch.pair_pixel])
        code = batch.feats[batch.pair_voxel, 0] * 100.0
        pure = (torch.abs(code - code.round()) < 1e-3) & (code.round() > 0)
        hits += int((said == code.round().long())[pure].sum())
        total += int(pure.sum())
    return hits / total, total


def test_the_teacher_features_at_the_pairings_encode_the_points_class(labelled_intensity, tmp_path, monkeypatch):
    floor = projection_floor(labelled_intensity)
    samples = pair_samples(_config(labelled_intensity, tmp_path), open_dataset(labelled_intensity))
    flips = []
    real_crop = pairs_module.random_resized_crop
    monkeypatch.setattr(pairs_module, "random_resized_crop", lambda *a, **k: flips.append(real_crop(*a, **k).flip)
                        or real_crop(*a, **k))
    aligned, pairings = agreement(samples)
    monkeypatch.undo()
    assert pairings > 2000 and 0 < sum(flips) < len(flips)  # flipped and unflipped crops both seen
    assert 0.8 < floor < 1.0                       # projection alone loses a few percent (edges, occlusion)
    assert aligned >= floor - 0.02, (aligned, floor)  # crops resample nearest: at most a pixel at boundaries
    patched, _ = agreement(samples, patch=8)
    assert patched >= floor - 0.15, (patched, floor)  # an 8-px token grid blurs the boundaries, no more

    # sabotage 1: the feature map's crop is offset by 6 pixels from the image's
    real = pairs_module.apply_crop_labels

    def shifted(labels, crop):
        return np.roll(real(labels, crop), 6, axis=1)

    monkeypatch.setattr(pairs_module, "apply_crop_labels", shifted)
    offset, _ = agreement(samples)
    # sabotage 2: the image is flipped but the feature map is not
    monkeypatch.setattr(pairs_module, "apply_crop_labels",
                        lambda labels, crop: real(labels, dataclasses.replace(crop, flip=False)))
    unflipped, _ = agreement(samples)
    assert offset < aligned - 0.05, (offset, aligned)
    assert unflipped < aligned - 0.1, (unflipped, aligned)
    print(f"projection floor {floor:.4f}, aligned {aligned:.4f} (8-px grid {patched:.4f}), offset 6 px "
          f"{offset:.4f}, flip not applied to the map {unflipped:.4f}; {pairings} pairings, {sum(flips)}/"
          f"{len(flips)} crops flipped")


def test_oracle_knobs_degrade_the_features_reproducibly():
    truth = torch.from_numpy(np.random.default_rng(0).integers(0, 5, (2, 40, 64)))
    images = torch.zeros(2, 3, 40, 64)
    perfect = build_image_backbone("oracle", None)
    said = perfect.net.classify(perfect(images, truth).permute(0, 2, 3, 1))
    assert torch.equal(said, truth)                                  # full resolution, no knob: exact
    degraded = build_image_backbone("oracle_degraded", None)
    a, b = degraded(images, truth), degraded(images, truth)
    assert a.shape == (2, 384, 3, 4) and torch.equal(a, b)           # 16-px grid, a pure function of the input
    confused = build_image_backbone("oracle", None, confusion=1.0)
    swapped = confused.net.classify(confused(images, truth).permute(0, 2, 3, 1))
    assert not torch.any((swapped == truth) & (truth > 0))           # every class region relabelled
    with pytest.raises(Exception, match="reads no weights file"):
        build_image_backbone("oracle", "weights.pth")
    with pytest.raises(Exception, match="needs the true class map"):
        perfect(images)
