"""SAM, Hugging Face and precomputed superpixels, end to end with tiny randomly initialised models (no downloads)."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from seal.core.errors import ConfigError, DataError
from seal.superpixels.base import NONE, finalize

torch = pytest.importorskip("torch")


def _image(height: int = 90, width: int = 160) -> np.ndarray:
    """Three flat colour regions and a rectangle, plus mild noise: structure for the models to respond to."""
    rng = np.random.default_rng(0)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 3] = (220, 30, 30)
    image[:, width // 3: 2 * width // 3] = (30, 200, 40)
    image[:, 2 * width // 3:] = (40, 40, 210)
    image[height // 3: 2 * height // 3, width // 6: 5 * width // 6] = (240, 240, 240)
    return np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)


def _assert_dense(segments: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    assert segments.dtype == np.uint16 and segments.shape == shape
    ids = np.unique(segments[segments != NONE])
    np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))
    return ids


# ---------------------------------------------------------------- SAM

def _tiny_sam(seed: int):
    """A randomly initialised SAM small enough for CPU tests (img_size 256, one 32-wide encoder block)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    size, dim = 256, 32
    return Sam(
        image_encoder=ImageEncoderViT(img_size=size, patch_size=16, embed_dim=dim, depth=1, num_heads=2,
                                      out_chans=dim, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                      use_rel_pos=True),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(size // 16, size // 16),
                                     input_image_size=(size, size), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=2,
                                 iou_head_hidden_dim=16,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=32, num_heads=2)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()


def _sam(checkpoint=None, model=None):
    pytest.importorskip("segment_anything")
    from seal.superpixels.sam import SamSuperpixels

    return SamSuperpixels(checkpoint, model=model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)


class _FixedGenerator:
    """Stands in for SamAutomaticMaskGenerator with masks the test controls."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = masks

    def generate(self, image: np.ndarray) -> list[dict]:
        return [{"segmentation": m, "area": int(m.sum())} for m in self.masks]


def test_sam_overlapping_masks_smaller_wins_and_uncovered_is_none():
    sam = _sam(model=_tiny_sam(0))
    big, small, other = (np.zeros((10, 12), dtype=bool) for _ in range(3))
    big[:, :8] = True
    small[2:5, 2:5] = True  # inside big: must keep its own id
    other[8:, 10:] = True  # separate: pixels outside all three stay uncovered
    sam._generator = _FixedGenerator([small, big, other])
    segments = sam(np.zeros((10, 12, 3), dtype=np.uint8))
    assert set(_assert_dense(segments, (10, 12))) == {1, 2, 3}
    assert np.unique(segments[small]).size == 1 and np.unique(segments[big & ~small]).size == 1
    assert segments[small][0] != segments[big & ~small][0]
    uncovered = ~(big | small | other)
    assert uncovered.any() and (segments[uncovered] == NONE).all() and (segments[~uncovered] != NONE).all()


def test_sam_tiny_model_end_to_end():
    sam = _sam(model=_tiny_sam(0))
    image = _image()
    segments = sam(image)
    ids = _assert_dense(segments, image.shape[:2])
    records = sam._generator.generate(image)  # deterministic: the same masks again
    assert 1 <= ids.size <= len(records)
    union = np.logical_or.reduce([r["segmentation"] for r in records])
    np.testing.assert_array_equal(segments != NONE, union)
    for segment_id in ids:  # every superpixel lies inside one mask
        inside = segments == segment_id
        assert any((r["segmentation"] | ~inside).all() for r in records)
    assert sam.params()["checkpoint"] == "<in-memory model>"


def test_sam_checkpoint_is_loaded_weights_only(tmp_path):
    image = _image()
    reference = _sam(model=_tiny_sam(0))(image)
    assert not np.array_equal(_sam(model=_tiny_sam(1))(image), reference)  # else the check below proves nothing
    checkpoint = tmp_path / "sam_tiny.pth"
    torch.save(_tiny_sam(0).state_dict(), checkpoint)
    loaded = _sam(checkpoint=checkpoint, model=_tiny_sam(1))  # seed-1 architecture, seed-0 weights from the file
    np.testing.assert_array_equal(loaded(image), reference)
    assert str(checkpoint.resolve()) in loaded.params()["checkpoint"]


def test_sam_bad_checkpoints(tmp_path):
    pytest.importorskip("segment_anything")
    from seal.superpixels.sam import SamSuperpixels

    with pytest.raises(ConfigError, match="superpixels.sam.checkpoint") as err:
        SamSuperpixels(tmp_path / "sam_vit_h_4b8939.pth")
    assert "sam_vit_h_4b8939.pth" in str(err.value)
    with pytest.raises(ConfigError, match="superpixels.sam.model_type"):
        SamSuperpixels(_write(tmp_path / "x.pth", b"x"), model_type="vit_giant")
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": object()}, pickled)  # not loadable with weights_only
    with pytest.raises(DataError, match="pickled.pth"):
        _sam(checkpoint=pickled, model=_tiny_sam(0))(_image())
    wrong = tmp_path / "wrong.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(3)}, wrong)
    with pytest.raises(ConfigError, match="superpixels.sam.model_type"):
        _sam(checkpoint=wrong, model=_tiny_sam(0))(_image())


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- Hugging Face

def _save_segformer(folder, seed: int = 0):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1],
                                          mlp_ratios=[2, 2], decoder_hidden_size=16, num_labels=3)
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(folder)
    transformers.SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def _save_mask2former(folder):
    """A tiny Mask2Former whose queries all predict class "road" (id 1): stuff fusion decides the segment count."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    backbone = transformers.SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                                       num_heads=[1, 1, 1, 1], window_size=2,
                                       out_features=["stage1", "stage2", "stage3", "stage4"])
    config = transformers.Mask2FormerConfig(
        backbone_config=backbone, hidden_dim=32, num_queries=6, encoder_layers=1, decoder_layers=2, feature_size=32,
        mask_feature_size=32, dim_feedforward=32, num_attention_heads=2, encoder_feedforward_dim=32,
        id2label={0: "car", 1: "road", 2: "sky"}, label2id={"car": 0, "road": 1, "sky": 2})
    model = transformers.Mask2FormerForUniversalSegmentation(config)
    with torch.no_grad():
        model.class_predictor.weight.zero_()
        model.class_predictor.bias.copy_(torch.tensor([0.0, 10.0, 0.0, -10.0]))
        embedder = "model.transformer_module.decoder.mask_predictor.mask_embedder.2.0.weight"
        model.get_parameter(embedder).mul_(200.0)  # crisp masks, so several queries own a region
    model.save_pretrained(folder)
    transformers.Mask2FormerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def test_split_components_separates_blobs_of_one_class():
    from seal.superpixels.huggingface import split_components

    classes = np.zeros((6, 9), dtype=np.int64)
    classes[1:3, 1:3] = 5  # two separate "cars"
    classes[1:3, 6:8] = 5
    classes[4, :] = -1  # ignored pixels
    out = split_components(classes)
    assert out[1, 1] != out[1, 6] and out[1, 1] >= 0 and out[1, 6] >= 0
    assert (out[4] == -1).all()
    assert np.unique(out[out >= 0]).size == 4  # two cars + background above and below the ignored row
    assert np.unique(out[classes == 0][:10]).size == 1  # the top background region is one segment


def test_hf_semantic_end_to_end(tmp_path):
    from seal.superpixels.huggingface import HuggingFaceSuperpixels

    folder = _save_segformer(tmp_path / "segformer")
    method = HuggingFaceSuperpixels(folder)
    image = _image()
    segments = method(image)
    ids = _assert_dense(segments, image.shape[:2])
    assert (segments != NONE).all()  # a semantic model labels every pixel
    for segment_id in ids:  # every superpixel is one connected region
        assert ndimage.label(segments == segment_id)[1] == 1
    assert method.params()["model_dir"] == str(folder.resolve())
    before = method.params()["fingerprint"]
    _save_segformer(folder, seed=1)  # swapped weights must change the cache key
    assert HuggingFaceSuperpixels(folder).params()["fingerprint"] != before


def test_hf_panoptic_fuses_stuff_only(tmp_path):
    from seal.superpixels.huggingface import HuggingFaceSuperpixels

    folder = _save_mask2former(tmp_path / "m2f")
    image = _image()
    loose = {"threshold": 0.0, "overlap_threshold": 0.1}  # random masks: keep every query that owns pixels
    kept = HuggingFaceSuperpixels(folder, stuff_classes=[], **loose)(image)  # "road" treated as a thing class
    fused = HuggingFaceSuperpixels(folder, stuff_classes=["road"], **loose)(image)
    _assert_dense(kept, image.shape[:2])
    assert set(np.unique(_assert_dense(fused, image.shape[:2]))) == {1}
    assert len(np.unique(kept[kept != NONE])) > 1
    np.testing.assert_array_equal(fused != NONE, kept != NONE)  # same pixels covered, only the grouping differs
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, stuff_classes=[1])))  # stuff named by the config
    np.testing.assert_array_equal(HuggingFaceSuperpixels(folder, **loose)(image), fused)
    with pytest.raises(ConfigError, match="superpixels.hf.stuff_classes"):
        HuggingFaceSuperpixels(folder, stuff_classes=["tree"])(image)


def test_hf_missing_folder(tmp_path):
    from seal.superpixels.huggingface import HuggingFaceSuperpixels

    with pytest.raises(ConfigError, match="superpixels.hf.model_dir"):
        HuggingFaceSuperpixels(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        HuggingFaceSuperpixels(tmp_path / "empty")


# ---------------------------------------------------------------- precomputed

CONTEXT = {"frame_id": "00/000003", "camera": "image_2", "sequence": "00", "frame_name": "000003",
           "image_path": None}


def test_precomputed_png_keeps_ids_above_255(tmp_path):
    from seal.superpixels.precomputed import PrecomputedSuperpixels

    raw = ((np.arange(20 * 30).reshape(20, 30) * 97) % 60000).astype(np.uint16)  # 600 distinct ids, up to ~60000
    target = tmp_path / "00" / "image_2" / "000003.png"
    target.parent.mkdir(parents=True)
    Image.fromarray(raw).save(target)
    segments = PrecomputedSuperpixels(tmp_path)(np.zeros((20, 30, 3), np.uint8), CONTEXT)
    _assert_dense(segments, (20, 30))
    expected = np.unique(raw, return_inverse=True)[1].reshape(raw.shape) + 1
    np.testing.assert_array_equal(segments, expected)
    assert np.unique(segments).size == 600


def test_precomputed_npy_by_image_stem_with_none_value(tmp_path):
    from seal.superpixels.precomputed import PrecomputedSuperpixels

    raw = np.zeros((4, 5), dtype=np.int32)
    raw[:2] = 7
    raw[3, 3:] = 400
    np.save(tmp_path / "CAM_FRONT__123.npy", raw)
    context = dict(CONTEXT, image_path=tmp_path / "samples" / "CAM_FRONT__123.jpg")
    image = np.zeros((4, 5, 3), np.uint8)
    segments = PrecomputedSuperpixels(tmp_path, pattern="{image_stem}", none_value=0)(image, context)
    assert (segments[raw == 0] == NONE).all() and set(np.unique(segments)) == {NONE, 1, 2}
    every = PrecomputedSuperpixels(tmp_path, pattern="{image_stem}")(image, context)  # 0 is a segment too
    np.testing.assert_array_equal(every, finalize(raw))


def test_precomputed_errors_name_the_file(tmp_path):
    from seal.superpixels.precomputed import PrecomputedSuperpixels

    method = PrecomputedSuperpixels(tmp_path)
    with pytest.raises(DataError, match="superpixels.precomputed.pattern") as err:
        method(np.zeros((4, 5, 3), np.uint8), CONTEXT)
    assert str(tmp_path / "00" / "image_2" / "000003.png") in str(err.value)
    (tmp_path / "00" / "image_2").mkdir(parents=True)
    np.save(tmp_path / "00" / "image_2" / "000003.npy", np.zeros((4, 6), np.int16))
    with pytest.raises(DataError, match="000003.npy") as err:
        method(np.zeros((4, 5, 3), np.uint8), CONTEXT)
    assert "4x6" in str(err.value) and "4x5" in str(err.value)
    np.save(tmp_path / "00" / "image_2" / "000003.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(DataError, match="integer"):
        method(np.zeros((4, 5, 3), np.uint8), CONTEXT)
    with pytest.raises(ConfigError, match="superpixels.precomputed.pattern"):
        PrecomputedSuperpixels(tmp_path, pattern="{scene}/{frame_name}")
