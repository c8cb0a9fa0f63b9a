"""SAM 2 superpixels: the id rules and the image batching on stand-in generators (no sam2 needed), then the real
nuScenes keyframe through `seal superpixels` with a tiny randomly initialised SAM 2 (needs Meta's sam2 package)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from seal.core.config import Sam2Config, SuperpixelConfig
from seal.core.errors import ConfigError, DataError, SealError
from seal.superpixels import SUPERPIXELS, build_superpixelizer
from seal.superpixels.base import NONE, load_segments
from seal.superpixels.sam2 import Sam2Superpixels, config_name

torch = pytest.importorskip("torch")

# a SAM 2 from the Hiera-T config, cut down for CPU tests: 5 Hiera blocks 16 wide, a 32-wide decoder, 512 input
TINY = ["++model.image_size=512", "++model.image_encoder.trunk.embed_dim=16",
        "++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]",
        "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]", "++model.image_encoder.neck.d_model=32",
        "++model.image_encoder.neck.position_encoding.num_pos_feats=32", "++model.memory_attention.num_layers=1",
        "++model.memory_attention.layer.dim_feedforward=64", "++model.memory_encoder.fuser.num_layers=1"]


def _assert_dense(segments: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    assert segments.dtype == np.uint16 and segments.shape == shape
    ids = np.unique(segments[segments != NONE])
    np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))
    return ids


# ---------------------------------------------------------------- without sam2: stand-in generators

class _Predictor:
    """Stands in for SAM2ImagePredictor: remembers the features it was given per image."""

    def __init__(self) -> None:
        self.encoded: list[int] = []  # batch sizes of the image-encoder calls
        self._features, self._orig_hw, self._is_image_set = None, None, False

    def set_image(self, image: np.ndarray) -> None:
        self.set_image_batch([image])
        self._features = {"image_embed": self._features["image_embed"][:1],
                          "high_res_feats": [f[:1] for f in self._features["high_res_feats"]]}

    def set_image_batch(self, images: list[np.ndarray]) -> None:
        self.encoded.append(len(images))
        embed = torch.stack([torch.from_numpy(im[..., 0].astype(np.float32)) for im in images])
        self._features = {"image_embed": embed, "high_res_feats": [embed * 2]}
        self._orig_hw, self._is_image_set = [im.shape[:2] for im in images], True

    def reset_predictor(self) -> None:
        self._features, self._orig_hw, self._is_image_set = None, None, False


class _Generator:
    """Stands in for SAM2AutomaticMaskGenerator: one mask per distinct value of the encoded red channel, plus the
    masks the test gives (generate() sets the image once, as SAM 2's does with crop_n_layers=0)."""

    def __init__(self, masks: list[np.ndarray] | None = None) -> None:
        self.predictor = _Predictor()
        self.masks = masks

    def generate(self, image: np.ndarray) -> list[dict]:
        self.predictor.set_image(image)
        assert self.predictor._orig_hw == [image.shape[:2]]
        if self.masks is not None:
            return [{"segmentation": m, "area": int(m.sum())} for m in self.masks]
        red = self.predictor._features["image_embed"][0].numpy()
        assert torch.equal(self.predictor._features["high_res_feats"][0][0], torch.from_numpy(red) * 2)
        return [{"segmentation": red == v, "area": int((red == v).sum())} for v in np.unique(red) if v > 0]


def _fake(masks: list[np.ndarray] | None = None) -> Sam2Superpixels:
    method = Sam2Superpixels(None, model=object())
    method._generator = _Generator(masks)
    return method


def test_overlapping_masks_smaller_wins_and_uncovered_is_none():
    big, small, other = (np.zeros((10, 12), dtype=bool) for _ in range(3))
    big[:, :8] = True
    small[2:5, 2:5] = True  # inside big: keeps its own id
    other[8:, 10:] = True  # apart: pixels outside all three stay uncovered
    segments = _fake([small, big, other])(np.zeros((10, 12, 3), dtype=np.uint8))
    assert set(_assert_dense(segments, (10, 12))) == {1, 2, 3}
    assert np.unique(segments[small]).size == 1 and np.unique(segments[big & ~small]).size == 1
    assert segments[small][0] != segments[big & ~small][0]
    uncovered = ~(big | small | other)
    assert (segments[uncovered] == NONE).all() and (segments[~uncovered] != NONE).all()


def test_more_than_255_masks_keep_distinct_uint16_ids():
    masks = []
    for i in range(300):  # 300 disjoint one-pixel masks: ids must not wrap at 255
        mask = np.zeros((20, 20), dtype=bool)
        mask.flat[i] = True
        masks.append(mask)
    segments = _fake(masks)(np.zeros((20, 20, 3), dtype=np.uint8))
    assert _assert_dense(segments, (20, 20)).size == 300
    assert (segments.flat[300:] == NONE).all()


def test_batch_encodes_once_and_gives_each_image_its_own_features():
    rng = np.random.default_rng(0)
    images = [np.zeros((6, 8, 3), dtype=np.uint8) for _ in range(3)]
    for k, image in enumerate(images):
        image[..., 0] = rng.integers(0, 3 + k, (6, 8))  # different regions per image
    method = _fake()
    maps = method.batch(images)
    assert method._generator.predictor.encoded == [3]  # one image-encoder call for the three
    singles = [method(image) for image in images]
    assert method._generator.predictor.encoded == [3, 1, 1, 1]
    for batched, single, image in zip(maps, singles, images, strict=True):
        _assert_dense(batched, (6, 8))
        np.testing.assert_array_equal(batched, single)
        assert ((batched == NONE) == (image[..., 0] == 0)).all()
    assert "set_image" not in vars(method._generator.predictor)  # the stand-in is removed again


def test_config_and_errors(tmp_path, monkeypatch):
    assert SUPERPIXELS.get("sam2") is Sam2Superpixels
    assert config_name("sam2.1_hiera_b+") == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    assert config_name("sam2_hiera_t") == "configs/sam2/sam2_hiera_t.yaml"
    with pytest.raises(ConfigError, match="superpixels.sam2.checkpoint=PATH"):
        build_superpixelizer(SuperpixelConfig(method="sam2"))
    with pytest.raises(ConfigError, match="sam2.1_hiera_large.pt"):
        build_superpixelizer(SuperpixelConfig(method="sam2", sam2=Sam2Config(checkpoint=str(tmp_path / "x.pt"))))
    file = tmp_path / "sam2.1_hiera_tiny.pt"
    file.write_bytes(b"x")
    with pytest.raises(ConfigError, match="superpixels.sam2.model_cfg"):
        Sam2Superpixels(file, model_cfg="hiera_t")
    with pytest.raises(ConfigError, match="superpixels.sam2.points_per_batch"):
        Sam2Superpixels(file, points_per_batch=0)
    with pytest.raises(ConfigError, match="superpixels.sam2.dtype"):
        Sam2Superpixels(file, dtype="float16")
    method = build_superpixelizer(SuperpixelConfig(method="sam2", sam2=Sam2Config(checkpoint=str(file))))
    params = method.params()
    assert str(file.resolve()) in params["checkpoint"] and params["model_cfg"] == "sam2.1_hiera_l"
    assert "points_per_batch" not in params  # it only groups the work
    monkeypatch.setitem(sys.modules, "sam2", None)  # as if sam2 were not installed
    with pytest.raises(SealError, match="SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2"):
        method(np.zeros((4, 4, 3), dtype=np.uint8))


# ---------------------------------------------------------------- with sam2: a tiny random SAM 2

def _tiny_sam2(seed: int = 0):
    pytest.importorskip("sam2", reason="Meta's sam2 is not installed (an sdist only on PyPI: see the sam2 extra in "
                                       "pyproject.toml)")
    from seal.superpixels.sam2 import build_sam2_model

    torch.manual_seed(seed)
    model = build_sam2_model("sam2.1_hiera_t", TINY)
    with torch.no_grad():  # smooth random masks: few RLE runs (fast post-processing), so NMS keeps several apart
        decoder = model.sam_mask_decoder
        for conv in (decoder.conv_s0, decoder.conv_s1):
            conv.weight.zero_()
            conv.bias.zero_()
        for up in (decoder.output_upscaling[0], decoder.output_upscaling[3]):
            up.weight.copy_(up.weight.mean(dim=(2, 3), keepdim=True).expand_as(up.weight))
    return model


def test_seal_superpixels_sam2_on_the_real_keyframe(nuscenes_root, tmp_path):
    from seal.cli.main import main
    from seal.data import open_dataset

    checkpoint = tmp_path / "sam2.1_hiera_tiny_random.pt"
    torch.save({"model": _tiny_sam2().state_dict()}, checkpoint)  # the official layout
    config = tmp_path / "sam2.yaml"  # the hydra overrides hold "=" and brackets: a YAML file, not key=value
    config.write_text(yaml.safe_dump({"superpixels": {"sam2": {
        "checkpoint": str(checkpoint), "model_cfg": "sam2.1_hiera_t", "overrides": TINY, "points_per_side": 2,
        "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}}}))
    cache = tmp_path / "cache"
    assert main(["superpixels", str(nuscenes_root), "--config", str(config), "--cache", str(cache), "--no-progress",
                 "superpixels.method=sam2"]) == 0
    folders = list((cache / "superpixels").glob("sam2-*"))
    assert len(folders) == 1
    frame = open_dataset(nuscenes_root)[0]
    maps = sorted(folders[0].rglob("*.png"))
    assert sorted(p.stem for p in maps) == sorted(c.name for c in frame.cameras)  # one map per camera image
    counts = []
    for camera in frame.cameras:
        segments = load_segments(next(p for p in maps if p.stem == camera.name))
        counts.append(_assert_dense(segments, camera.image.shape[:2]).size)
    assert min(counts) >= 1 and max(counts) >= 2  # several masks survive NMS: painting is exercised


def test_checkpoint_is_loaded_batch_matches_and_wrong_files_are_named(tmp_path):
    image = np.zeros((96, 160, 3), dtype=np.uint8)
    image[:, 80:] = (200, 40, 40)
    image[30:60, 20:140] = 230
    loose = {"points_per_side": 2, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    model, other = _tiny_sam2(0), _tiny_sam2(1)
    reference = Sam2Superpixels(None, model=model, **loose)
    expected = reference(image)
    _assert_dense(expected, image.shape[:2])
    assert not np.array_equal(Sam2Superpixels(None, model=other, **loose)(image), expected)  # else proves nothing
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    loaded = Sam2Superpixels(checkpoint, model=other, **loose)  # seed-1 model, seed-0 weights from the file
    np.testing.assert_array_equal(loaded(image), expected)
    assert str(checkpoint.resolve()) in loaded.params()["checkpoint"]
    flipped = np.ascontiguousarray(image[::-1])
    batched = reference.batch([image, flipped])  # one encoder pass for both: the same maps
    np.testing.assert_array_equal(batched[0], expected)
    np.testing.assert_array_equal(batched[1], reference(flipped))
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": {"image_encoder.trunk.pos_embed": torch.zeros(3)}}, wrong)
    with pytest.raises(ConfigError, match="superpixels.sam2.model_cfg"):
        Sam2Superpixels(wrong, model=other, **loose)(image)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": object()}, pickled)  # not loadable with weights_only
    with pytest.raises(DataError, match="pickled.pt"):
        Sam2Superpixels(pickled, model=other, **loose)(image)
