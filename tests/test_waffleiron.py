"""WaffleIron (seal.models.waffleiron): the 2D projection + mixing of a spatial mix against a dense computation,
neighbour lists against brute force, gradients, per-token output and batch independence, ScaLR+'s released key
layout (written here from the official module definitions) loading strictly, and one-line errors for wrong files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from seal.core.batch import BackboneInput
from seal.core.config import BackboneConfig, WaffleIronConfig
from seal.core.errors import DataError
from seal.core.settings import load_config
from seal.models.export import load_backbone
from seal.models.waffleiron import SHAPES, SpatialMix, WaffleIron, knn, project, resolve_shape
from seal.models.waffleiron_weights import NUSCENES_INTENSITY, load_scalr_checkpoint


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tensors here are tiny: one thread avoids OpenMP barriers stalling on a busy 2-core machine (3x faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def scans(sizes: list[int], seed: int = 0, spread: float = 20.0) -> BackboneInput:
    """Random scans (tokens of scan b contiguous), a few tokens outside the tiny fov."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.cat([torch.randn(n, 3, generator=g) * torch.tensor([spread, spread, 2.0]) for n in sizes])
    batch = torch.cat([torch.full((n,), b, dtype=torch.int32) for b, n in enumerate(sizes)])
    coords = torch.column_stack([batch, torch.zeros(len(xyz), 3, dtype=torch.int32)])
    return BackboneInput(coords, torch.rand(len(xyz), 1, generator=g), xyz, len(sizes))


def tiny_model(seed: int = 0, **options) -> WaffleIron:
    torch.manual_seed(seed)
    return WaffleIron(BackboneConfig(name="waffleiron", waffleiron=WaffleIronConfig(shape="tiny", **options))).eval()


def test_spatial_mix_equals_a_dense_grid_computation() -> None:
    """Cell means by explicit loops, depthwise conv2d on the dense grid, read back per token; outside the fov: 0."""
    torch.manual_seed(1)
    shape = resolve_shape(WaffleIronConfig(shape="tiny", dim_proj=[1], grid_shape=[[6, 5]]))
    inputs = scans([40, 25], seed=2, spread=25.0)
    batch = inputs.coords[:, 0].long()
    smix = SpatialMix(8, (6, 5), 0.0, "gelu", "layernorm", 0.1).eval()
    tokens = torch.randn(len(batch), 8)
    (plane,) = project(inputs.xyz, batch, 2, shape)
    out = smix(tokens, plane, batch, 2)

    xyz, (lo, hi) = inputs.xyz.numpy().astype(np.float64), np.array(shape.fov)
    h = smix.norm(tokens).detach().numpy()
    sums, counts, where = np.zeros((2, 8, 6, 5)), np.zeros((2, 6, 5)), {}
    for i, (b, p) in enumerate(zip(batch.tolist(), xyz, strict=True)):
        if np.all(p > lo) and np.all(p < hi):  # plane (x, z): axes 0 and 2
            r, c = int((p[0] - lo[0]) // ((hi[0] - lo[0]) / 6)), int((p[2] - lo[2]) // ((hi[2] - lo[2]) / 5))
            sums[b, :, r, c] += h[i]
            counts[b, r, c] += 1
            where[i] = (b, r, c)
    assert 0 < len(where) < len(batch)  # some tokens fall outside the fov
    grid = torch.from_numpy(sums / np.maximum(counts, 1)[:, None]).float()
    conv1, act, conv2 = smix.ffn
    grid = F.conv2d(act(F.conv2d(grid, conv1.weight, conv1.bias, padding=1, groups=8)), conv2.weight, conv2.bias,
                    padding=1, groups=8)
    scale = smix.scale.weight.reshape(-1)
    expected = tokens.clone()
    for i, (b, r, c) in where.items():
        expected[i] += scale * grid[b, :, r, c]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method, chunk", [("kdtree", 1 << 25), ("torch", 1 << 25), ("torch", 100)])
def test_neighbour_lists_equal_brute_force(method: str, chunk: int) -> None:
    inputs = scans([50, 37, 5], seed=3)
    order = torch.randperm(92, generator=torch.Generator().manual_seed(0))  # scans interleaved
    xyz, batch = inputs.xyz[order], inputs.coords[order, 0].long()
    got = knn(xyz, batch, 3, 8, method=method, chunk=chunk).numpy()
    pts, b = xyz.double().numpy(), batch.numpy()
    for scan in range(3):
        rows = np.flatnonzero(b == scan)
        dist = np.linalg.norm(pts[rows, None] - pts[None, rows], axis=-1)
        nearest = rows[np.argsort(dist, axis=1, kind="stable")[:, 1:9]]
        if len(rows) < 9:  # fewer tokens than k + 1: the rest repeat the token itself
            nearest = np.column_stack([nearest, np.repeat(rows[:, None], 9 - len(rows), axis=1)])
        np.testing.assert_array_equal(got[rows], nearest)


@pytest.mark.parametrize("norm, activation", [("layernorm", "gelu"), ("batchnorm", "relu")])
def test_gradients_reach_every_parameter(norm: str, activation: str) -> None:
    model = tiny_model(norm=norm, activation=activation).train()
    model(scans([150, 100], seed=4)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name == "embed.conv2.0.bias":  # a shift before a bias-free conv + training BatchNorm cancels (as in WI)
            assert p.grad.abs().max() < 1e-3
        else:
            assert p.grad.abs().sum() > 0, name


def test_output_is_per_token_in_input_order_and_scans_do_not_mix() -> None:
    model = tiny_model(seed=5)
    a, b = scans([300], seed=6), scans([200], seed=7)
    both = BackboneInput(torch.cat([a.coords, b.coords + torch.tensor([1, 0, 0, 0], dtype=torch.int32)]),
                         torch.cat([a.feats, b.feats]), torch.cat([a.xyz, b.xyz]), 2)
    order = torch.randperm(500, generator=torch.Generator().manual_seed(1))
    shuffled = BackboneInput(both.coords[order], both.feats[order], both.xyz[order], 2)
    with torch.no_grad():
        out, alone_a, alone_b = model(shuffled), model(a), model(b)
    assert out.shape == (500, model.out_channels) == (500, 32)
    restored = torch.empty_like(out)
    restored[order] = out
    torch.testing.assert_close(restored[:300], alone_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(restored[300:], alone_b, atol=1e-5, rtol=1e-5)


def official_scalr_plus_state(depth: int, width: int, c_in: int = 5, hidden: int = 24, out: int = 16,
                              seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the names and shapes of ScaLR+'s Segmenter (embedding.py, backbone.py, segmenter.py of
    valeoai/ScaLR scalr_plus), with DDP's ``module.`` prefix, written from the official module definitions."""
    g = torch.Generator().manual_seed(seed)
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        shapes.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                       f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})

    bn("embed.norm", c_in)
    shapes.update({"embed.conv1.weight": (width, c_in, 1), "embed.conv1.bias": (width,)})
    bn("embed.conv2.0", c_in)
    shapes["embed.conv2.1.weight"] = (width, c_in, 1, 1)
    bn("embed.conv2.2", width)
    shapes.update({"embed.conv2.4.weight": (width, width, 1, 1), "embed.final.weight": (width, 2 * width, 1),
                   "embed.final.bias": (width,)})
    for d in range(depth):
        c, s = f"waffleiron.channel_mix.{d}", f"waffleiron.spatial_mix.{d}"
        shapes.update({f"{c}.norm.weight": (width,), f"{c}.norm.bias": (width,), f"{c}.mlp.0.weight": (width, width, 1),
                       f"{c}.mlp.0.bias": (width,), f"{c}.mlp.2.weight": (width, width, 1), f"{c}.mlp.2.bias": (width,),
                       f"{c}.scale.weight": (width, 1, 1), f"{s}.norm.weight": (width,), f"{s}.norm.bias": (width,),
                       f"{s}.ffn.0.weight": (width, 1, 3, 3), f"{s}.ffn.0.bias": (width,),
                       f"{s}.ffn.2.weight": (width, 1, 3, 3), f"{s}.ffn.2.bias": (width,),
                       f"{s}.scale.weight": (width, 1, 1)})
    shapes.update({"classif.0.weight": (hidden, width, 1), "classif.0.bias": (hidden,),
                   "classif.2.weight": (out, hidden, 1), "classif.2.bias": (out,)})
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.3
    return {"module." + k: v for k, v in state.items()}


def test_a_checkpoint_in_scalr_plus_released_layout_loads_strictly(tmp_path) -> None:
    state = official_scalr_plus_state(depth=4, width=32)
    path = tmp_path / "model.pth"
    torch.save({"epoch": 64, "model_point": state, "optim": {"state": {}, "param_groups": []}}, path)
    loaded, meta = load_backbone(path)  # what `seal probe --pretrained FILE` calls
    assert isinstance(loaded, WaffleIron) and meta["format"] == "scalr-waffleiron" and meta["source"] == "model_point"
    s = loaded.shape
    assert (s.depth, s.width, s.norm, s.activation, s.shape, meta["head_kind"]) == (4, 32, "layernorm", "gelu",
                                                                                   "tiny", "mlp")
    assert sorted(meta["head"]) == ["classif.0.bias", "classif.0.weight", "classif.2.bias", "classif.2.weight"]
    assert (s.intensity_mean, s.intensity_std) == NUSCENES_INTENSITY and "nuScenes" in " ".join(meta["notes"])
    reference = tiny_model(intensity_mean=NUSCENES_INTENSITY[0], intensity_std=NUSCENES_INTENSITY[1])
    plain = {k.removeprefix("module."): v for k, v in state.items()}
    reference.load_state_dict({k: v for k, v in plain.items() if not k.startswith("classif.")}, strict=True)
    inputs = scans([300, 200], seed=8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(inputs), reference(inputs), atol=0, rtol=0)
    again, _ = load_scalr_checkpoint(path, BackboneConfig(name="waffleiron",
                                                          waffleiron=WaffleIronConfig(activation="relu")))
    assert again.shape.activation == "relu"  # what the tensors cannot tell, the config sets


def test_wrong_files_are_one_line_naming_what_they_are(tmp_path) -> None:
    dino = tmp_path / "dinov2.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 384), "mask_token": torch.zeros(1, 384),
                "patch_embed.proj.weight": torch.zeros(384, 3, 14, 14), "pos_embed": torch.zeros(1, 1370, 384),
                "blocks.0.ls1.gamma": torch.zeros(384)}, dino)
    seal_export = tmp_path / "backbone.pt"
    torch.save({"format": "seal-backbone-v1", "backbone_config": {"name": "minkunet"}, "voxel": {},
                "state_dict": {"stem.0.weight": torch.zeros(1)}}, seal_export)
    archive = tmp_path / "WI_768-ScaLR_plus-pretrained.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08" + bytes(300))
    cases = [(load_scalr_checkpoint, dino, "DINOv2 ViT-S/14"), (load_scalr_checkpoint, seal_export, "seal file"),
             (load_backbone, dino, "DINOv2 ViT-S/14"), (load_backbone, archive, "untar it")]
    for loader, path, what in cases:
        with pytest.raises(DataError) as err:
            loader(path)
        message = str(err.value)
        assert what in message and "\n" not in message, message
    truncated = tmp_path / "short.pth"
    state = official_scalr_plus_state(depth=2, width=32)
    del state["module.waffleiron.spatial_mix.1.ffn.2.bias"]
    torch.save({"model_point": state}, truncated)
    with pytest.raises(DataError, match="does not load.*spatial_mix.1.ffn.2.bias"):
        load_backbone(truncated)


def test_shapes_and_overrides_resolve_through_the_config() -> None:
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import resolve_preset

    assert set(SHAPES) == set(WaffleIronConfig.RULES["shape"].split("|"))
    key = "model.backbone.waffleiron."
    cfg = load_config(PretrainSchema, None, ["model.backbone.name=waffleiron", f"{key}shape=WI-48-256",
                                             f"{key}drop_path=0.1"])
    s = resolve_shape(cfg.model.backbone.waffleiron)
    assert (s.depth, s.width, s.grid_shape, s.drop_path, s.norm) == (48, 256, [[250, 250], [250, 12], [250, 12]],
                                                                     0.1, "batchnorm")
    for preset, (width, drop, epochs) in {"scalr": (768, 0.0, 25), "scalr_plus": (768, 0.2, 65)}.items():
        p = load_config(PretrainSchema, resolve_preset(preset, ("pretrain",)))
        r = resolve_shape(p.model.backbone.waffleiron)
        assert (p.model.backbone.name, r.width, r.drop_path, p.optim.epochs) == ("waffleiron", width, drop, epochs)
        assert p.loss.scalr == 1.0 and p.loss.vfm == p.loss.tmp == p.loss.p2s == p.loss.ppkt == 0.0


def test_a_seal_export_of_waffleiron_round_trips(tmp_path) -> None:
    from seal.models.export import export_backbone

    model = tiny_model(seed=9, drop_path=0.1)
    path = export_backbone(tmp_path / "backbone.pt", model, {"size": 0.1, "mode": "cartesian"})
    loaded, meta = load_backbone(path)
    assert isinstance(loaded.config.waffleiron, WaffleIronConfig) and loaded.config == model.config
    inputs = scans([120, 80], seed=10)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(inputs), model(inputs), atol=0, rtol=0)


@pytest.mark.parametrize("name", ["pretrain_scalr.yaml", "pretrain_scalr_plus.yaml"])
def test_every_number_of_the_scalr_presets_names_its_source(name: str) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "seal" / "configs" / name).read_text()
    bare = [line for line in text.splitlines() if not line.lstrip().startswith("#")
            and re.search(r":\s*[^#]*\d", line) and "#" not in line]
    assert not bare and "ScaLR" in text, bare
