"""High-resolution pretraining on the CPU: the teacher's chunked forward equals the whole one, a step with
``teacher.chunk=1`` has the same losses, reduced precision is ignored (once) off CUDA, and a 448x896 crop goes
through cropping, pairing and the 2D head's upsampling on synthetic images (which are smaller: upscaled)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from seal.core.config import AugmentConfig, TeacherConfig
from seal.core.errors import ConfigError
from seal.core.schemas import PretrainSchema
from seal.core.settings import load_config
from seal.engine.teacher_forward import TeacherForward, check_crop_size, crop_note, teacher_dtype
from seal.models.teachers import RandomTeacherWarning, build_image_backbone
from seal.samples.augment import apply_crop_labels, apply_crop_pairings, random_resized_crop

TINY = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
FAST = ["augment.min_pairings_per_image=32", "train.batch_size=2", "train.num_workers=0",
        "train.deterministic=true"]
TINY_VIT = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def _teacher(name: str, **kwargs):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomTeacherWarning)
        return build_image_backbone(name, None, **kwargs)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """One sequence of 3 frames with one 480x270 camera (`seal synth`'s image size) and a sparse 16-beam LiDAR (a
    small 3D network input: the 2D side is what is tested)."""
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("hires") / "synth", sequences=1, frames=3, seed=5, cameras=1,
                            beams=16, azimuth_steps=480, progress=False)


@pytest.mark.parametrize("name, kwargs, chunk", [("vit_small_patch14_dinov2", TINY_VIT, 2),
                                                  ("vit_small_patch16", TINY_VIT, 1), ("resnet50", {}, 3)])
def test_a_chunked_teacher_forward_equals_the_whole_one(name, kwargs, chunk) -> None:
    """ViTs: bit-exact. ResNets: each chunk is bit-exact with the teacher run on that chunk alone, and the whole
    within float32 rounding (oneDNN picks its convolution algorithm by batch size: batch 1 vs 5 of the bare
    teacher differ the same way, by ~1e-6 of the largest of 50 layers' activations)."""
    teacher = _teacher(name, **kwargs)
    images = torch.rand(5, 3, 42, 60, generator=torch.Generator().manual_seed(1))
    whole = TeacherForward(teacher)(images)
    parts = TeacherForward(teacher, chunk=chunk)(images)
    assert parts.dtype == whole.dtype == torch.float32 and parts.shape == whole.shape
    assert parts.shape[0] == 5 and parts.is_contiguous()
    for start in range(0, 5, chunk):
        assert torch.equal(parts[start:start + chunk], teacher(images[start:start + chunk]))
    if name.startswith("vit"):
        assert torch.equal(parts, whole)
    else:
        assert (parts - whole).abs().max() <= 1e-5 * whole.abs().max()


def test_reduced_precision_is_ignored_on_the_cpu_and_said_once(capsys) -> None:
    assert teacher_dtype(TeacherConfig(dtype="bfloat16"), torch.device("cpu")) is torch.float32
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "teacher.dtype=bfloat16 is ignored on cpu" in said
    assert teacher_dtype(TeacherConfig(dtype="float16"), torch.device("cpu"), say=False) is torch.float32
    assert teacher_dtype(TeacherConfig(), torch.device("cpu")) is torch.float32
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("override, key", [("teacher.dtype=float64", "teacher.dtype"),
                                           ("teacher.chunk=-1", "teacher.chunk")])
def test_bad_teacher_precision_or_chunk_is_one_line_naming_the_key(override, key) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(PretrainSchema, None, [override])
    assert str(err.value).startswith(f"config key '{key}'") and "\n" not in str(err.value)


def test_a_step_with_chunks_of_one_image_has_the_same_losses(synth, tmp_path, capsys) -> None:
    from seal.data import open_dataset
    from seal.engine.distributed import DistInfo
    from seal.engine.pretrain import PretrainTask, pair_samples
    from seal.samples.pairs import collate_pairs

    base = [f"data.path={synth}", f"train.run_dir={tmp_path}", *FAST, "augment.crop_size=[56,104]"]
    cfg = load_config(PretrainSchema, TINY, base)
    samples = pair_samples(cfg, open_dataset(synth))
    batch = collate_pairs([samples[0], samples[1]])
    losses = {}
    for chunk in (0, 1):
        cfg = load_config(PretrainSchema, TINY, [*base, f"teacher.chunk={chunk}", "teacher.dtype=bfloat16"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomTeacherWarning)
            task = PretrainTask(cfg, samples, DistInfo())
        losses[chunk] = task.loss(task.student, batch, torch.Generator().manual_seed(0))
        assert task.teacher_forward.chunk == chunk and task.teacher_forward.dtype is torch.float32
    assert capsys.readouterr().out.count("teacher.dtype=bfloat16 is ignored on cpu") == 2  # once per task
    assert losses[0].keys() == losses[1].keys()
    for term in losses[0]:
        torch.testing.assert_close(losses[1][term], losses[0][term], rtol=1e-6, atol=1e-6)


def test_crop_448x896_pairs_each_point_with_its_own_pixel_when_upscaling() -> None:
    """A 270x480 image cropped to 448x896: the superpixel a pairing lands on after the crop is the one the point
    projected to before it, for every kept pairing (flipped or not)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 60_000, (270, 480)).astype(np.uint16)  # every pixel its own id: exact correspondence
    row, col = rng.integers(0, 270, 5000), rng.integers(0, 480, 5000)
    for _ in range(20):
        crop = random_resized_crop(270, 480, (448, 896), rng)
        cropped = apply_crop_labels(labels, crop)
        keep, new_row, new_col = apply_crop_pairings(row, col, crop)
        assert cropped.shape == (448, 896) and keep.any()
        assert new_row.max() < 448 and new_col.max() < 896 and new_row.min() >= 0 and new_col.min() >= 0
        np.testing.assert_array_equal(cropped[new_row, new_col], labels[row[keep], col[keep]])


def test_crop_448x896_runs_a_pretraining_step_on_synthetic_data(synth, tmp_path, capsys) -> None:
    from seal.data import open_dataset
    from seal.engine.distributed import DistInfo
    from seal.engine.pretrain import PretrainTask, pair_samples
    from seal.samples.pairs import collate_pairs

    cfg = load_config(PretrainSchema, TINY, [f"data.path={synth}", f"train.run_dir={tmp_path}", *FAST,
                                             "augment.crop_size=[448,896]", "teacher.chunk=1"])
    samples = pair_samples(cfg, open_dataset(synth))
    note = capsys.readouterr().out
    assert "augment.crop_size 448x896 is larger than the camera images (270x480" in note and "upscaled" in note
    sample = samples[0]
    assert sample.images.shape == (1, 3, 448, 896) and sample.superpixels.shape == (1, 448, 896)
    assert sample.pair_row.max() < 448 and sample.pair_col.max() < 896 and sample.pair_row.shape[0] > 100
    batch = collate_pairs([samples[0], samples[1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomTeacherWarning)
        task = PretrainTask(cfg, samples, DistInfo())
    maps = task.teacher_forward(batch.images)
    assert maps.shape == (2, 96, 28, 56) and maps.dtype == torch.float32  # stride 16 of the tiny ViT
    voxels, pixels, _ = task.student(batch.backbone_input(), maps, (448, 896))
    assert pixels.shape == (2 * 448 * 896, cfg.model.proj_dim)  # upsampled to every pixel of the crop
    losses = task.loss(task.student, batch, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert task.student.head2d.proj.weight.grad is not None


@pytest.mark.parametrize("size", [[10000, 10000], [0, 416], [224], [224, 416, 3], [-224, 416]])
def test_an_absurd_crop_size_is_one_line_naming_the_key(size) -> None:
    with pytest.raises(ConfigError) as err:
        check_crop_size(AugmentConfig(crop_size=size))
    message = str(err.value)
    assert message.startswith(f"config key 'augment.crop_size' = {size}:") and "\n" not in message
    check_crop_size(AugmentConfig(crop_size=[448, 896]))
    check_crop_size(AugmentConfig(crop_size=[4096, 4096]))


def test_seal_pretrain_refuses_an_absurd_crop_before_making_a_run_folder(synth, tmp_path, capsys) -> None:
    from seal.cli.main import main

    run = tmp_path / "never"
    assert main(["pretrain", str(synth), "--config", "tiny", f"train.run_dir={run}",
                 "augment.crop_size=[10000,10000]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seal: error: config key 'augment.crop_size' = [10000, 10000]") and "\n" not in err
    assert not run.exists()


def test_the_crop_note_is_silent_when_the_images_are_large_enough() -> None:
    assert crop_note(AugmentConfig(crop_size=[448, 896]), {(900, 1600)}) is None
    assert "270x480" in crop_note(AugmentConfig(crop_size=[224, 896]), {(270, 480), (900, 1600)})
