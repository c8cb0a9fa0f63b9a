"""The image-to-LiDAR distillation family (PPKT, SLidR, ScaLR, Seal): PPKT and ScaLR against independent
loop-based references (values and gradients, float64), attached zeros for switched-off terms, the packaged
``--objective`` files, the collated pixel index of each pairing, and a few pretraining steps per objective."""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import seal.cli.commands  # noqa: F401 - registers the commands
from seal.cli.main import main
from seal.cli.registry import REGISTRY, build_config
from seal.core.batch import PairBatch, check_index
from seal.core.config import LossConfig, SuperpixelConfig
from seal.core.errors import ConfigError
from seal.losses.distill import seal_loss
from seal.losses.family import TERMS, distillation_loss, ppkt_loss, scalr_loss, teacher_features_at
from seal.losses.objectives import OBJECTIVES, Objective

TAU = 0.07
ATOL = 1e-5
FAST = ["augment.crop_size=[56,104]", "augment.min_pairings_per_image=32", "train.batch_size=2",
        "train.num_workers=0", "train.log_every=1", "train.deterministic=true"]


def _unit(n: int, d: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d), dim=1).requires_grad_(True)


# ----------------------------------------------------------------------------------------------------------------
# Independent references: Python loops over pairings, explicit exp / log sums, float64.
# ----------------------------------------------------------------------------------------------------------------


def ref_ppkt(pf, pair_voxel, xf, pair_pixel, tau=TAU) -> torch.Tensor:
    """-1/S sum_a log( exp(<k_a,q_a>/tau) / sum_b exp(<k_a,q_b>/tau) ), k = 3D of the pairing, q = its pixel."""
    pf, xf = pf.double(), xf.double()
    ks = [pf[int(v)] for v in pair_voxel]
    qs = [xf[int(p)] for p in pair_pixel]
    total = torch.zeros((), dtype=torch.float64)
    for a in range(len(ks)):
        num = torch.exp((ks[a] * qs[a]).sum() / tau)
        den = sum(torch.exp((ks[a] * qs[b]).sum() / tau) for b in range(len(qs)))
        total = total - torch.log(num / den)
    return total / len(ks)


def ref_scalr(pf, pair_voxel, maps, pair_pixel, size) -> torch.Tensor:
    """1/P sum_p ||k_p - t_p||_2, t_p = L2-normalised teacher feature at the pixel of the map upsampled to size."""
    height, width = size
    up = F.interpolate(maps.detach().double(), size=size, mode="bilinear", align_corners=False)
    pf = pf.double()
    total = torch.zeros((), dtype=torch.float64)
    for v, pixel in zip(pair_voxel.tolist(), pair_pixel.tolist(), strict=True):
        image, rest = divmod(pixel, height * width)
        row, col = divmod(rest, width)
        t = up[image, :, row, col]
        t = t / torch.sqrt((t * t).sum())
        d = pf[v] - t
        total = total + torch.sqrt((d * d).sum())
    return total / len(pair_voxel)


def _grads(loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [g if g is not None else torch.zeros_like(x)
            for g, x in zip(torch.autograd.grad(loss, inputs, allow_unused=True), inputs, strict=True)]


def _check(ours: torch.Tensor, ref: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), ref, atol=ATOL, rtol=0)
    for g_ours, g_ref in zip(_grads(ours, inputs), _grads(ref, inputs), strict=True):
        torch.testing.assert_close(g_ours.double(), g_ref.double(), atol=ATOL, rtol=0)


def test_ppkt_matches_the_loop_reference() -> None:
    torch.manual_seed(0)
    pf, xf = _unit(30, 8), _unit(4 * 6 * 5, 8)
    pair_voxel = torch.randint(0, 30, (40,))
    pair_pixel = torch.randperm(xf.shape[0])[:40]
    ours = ppkt_loss(pf, pair_voxel, xf, pair_pixel, TAU, num_pairings=None)
    _check(ours, ref_ppkt(pf, pair_voxel, xf, pair_pixel), [pf, xf])
    # num_pairings >= P: every pairing, the same value
    torch.testing.assert_close(ppkt_loss(pf, pair_voxel, xf, pair_pixel, TAU, num_pairings=40), ours)


def test_ppkt_samples_num_pairings_without_replacement() -> None:
    torch.manual_seed(1)
    pf, xf = _unit(50, 8), _unit(200, 8)
    pair_voxel, pair_pixel = torch.randint(0, 50, (120,)), torch.randperm(200)[:120]
    ours = ppkt_loss(pf, pair_voxel, xf, pair_pixel, TAU, num_pairings=16,
                     generator=torch.Generator().manual_seed(7))
    pick = torch.randperm(120, generator=torch.Generator().manual_seed(7))[:16]  # the documented draw
    assert pick.unique().numel() == 16
    _check(ours, ref_ppkt(pf, pair_voxel[pick], xf, pair_pixel[pick]), [pf, xf])
    again = ppkt_loss(pf, pair_voxel, xf, pair_pixel, TAU, num_pairings=16,
                      generator=torch.Generator().manual_seed(7))
    assert torch.equal(ours, again)


@pytest.mark.parametrize("maps_hw, size", [((3, 5), (12, 20)), ((4, 6), (13, 22)), ((2, 2), (7, 9))])
def test_scalr_matches_the_loop_reference(maps_hw, size) -> None:
    """Teacher maps of any stride (divisible or not) upsampled bilinearly to the crop, read at the pixels."""
    torch.manual_seed(2)
    images, channels = 3, 6
    pf = _unit(25, channels)
    maps = torch.randn(images, channels, *maps_hw, requires_grad=True)
    pair_voxel = torch.randint(0, 25, (60,))
    pair_pixel = torch.randint(0, images * size[0] * size[1], (60,))
    pair_pixel[:4] = torch.tensor([0, size[1] - 1, size[0] * size[1] - 1, images * size[0] * size[1] - 1])  # corners
    ours = scalr_loss(pf, pair_voxel, maps, pair_pixel, size)
    _check(ours, ref_scalr(pf, pair_voxel, maps, pair_pixel, size), [pf])
    scalr_loss(pf, pair_voxel, maps, pair_pixel, size).backward()
    assert maps.grad is None  # the distillation target is frozen: no gradient reaches the teacher's features


def test_teacher_features_at_equals_the_upsampled_map() -> None:
    torch.manual_seed(3)
    maps = torch.randn(2, 5, 4, 7)
    size = (16, 27)
    every = torch.arange(2 * 16 * 27)
    up = F.interpolate(maps, size=size, mode="bilinear", align_corners=False).permute(0, 2, 3, 1).reshape(-1, 5)
    torch.testing.assert_close(teacher_features_at(maps, every, size), up, atol=ATOL, rtol=0)


def test_scalr_is_zero_when_the_points_match_the_teacher() -> None:
    maps = torch.randn(1, 4, 2, 3)
    size = (4, 6)
    pair_pixel = torch.arange(24)
    target = F.normalize(teacher_features_at(maps, pair_pixel, size), dim=1).requires_grad_(True)
    loss = scalr_loss(target, torch.arange(24), maps, pair_pixel, size)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(target.grad).all()  # ||0|| has a finite (zero) gradient


def test_no_pairing_is_an_attached_zero() -> None:
    pf, xf = _unit(5, 4), _unit(12, 4)
    none = torch.zeros(0, dtype=torch.long)
    for loss in (ppkt_loss(pf, none, xf, none), scalr_loss(pf, none, torch.randn(1, 4, 2, 2), none, (3, 4))):
        assert loss.item() == 0.0 and loss.requires_grad
        loss.backward()
    assert pf.grad is not None and torch.count_nonzero(pf.grad) == 0


def test_bad_inputs_are_errors() -> None:
    pf, xf = _unit(5, 4), _unit(12, 4)
    with pytest.raises(ValueError, match="equal length"):
        ppkt_loss(pf, torch.arange(3), xf, torch.arange(4))
    with pytest.raises(ValueError, match="pair_pixel indexes outside"):  # checked at collation, not in the loss
        check_index("pair_pixel", torch.tensor([0, 1, 12]), xf.shape[0])
    with pytest.raises(ValueError, match="channels"):
        ppkt_loss(pf, torch.arange(3), _unit(12, 5), torch.arange(3))
    with pytest.raises(ValueError, match="width"):
        scalr_loss(pf, torch.arange(3), torch.randn(1, 5, 2, 2), torch.arange(3), (3, 4))


# ----------------------------------------------------------------------------------------------------------------
# distillation_loss: every term, weighted, zeros attached
# ----------------------------------------------------------------------------------------------------------------


def _batch(seed: int = 4):
    """A loose PairBatch: 2 images of 6 x 5 pixels, voxels shared by the pairings and the two frames."""
    g = torch.Generator().manual_seed(seed)
    images, height, width, dim, teacher = 2, 6, 5, 8, 12
    voxels = F.normalize(torch.randn(40, dim, generator=g), dim=1).requires_grad_(True)
    pixels = F.normalize(torch.randn(images * height * width, dim, generator=g), dim=1).requires_grad_(True)
    scalr_voxels = F.normalize(torch.randn(40, teacher, generator=g), dim=1).requires_grad_(True)
    maps = torch.randn(images, teacher, 3, 2, generator=g)
    pair_pixel = torch.randperm(images * height * width, generator=g)[:30]
    pair_voxel = torch.randint(0, 20, (30,), generator=g)
    pixel_superpixel = torch.randint(-1, 9, (images * height * width,), generator=g)
    batch = PairBatch(
        coords=torch.zeros(40, 4, dtype=torch.int32), feats=torch.zeros(40, 1), xyz=torch.zeros(40, 3), batch_size=2,
        point_voxel_t=torch.arange(20, 30), point_voxel_n=torch.arange(30, 40),
        segments_t=torch.randint(-1, 4, (10,), generator=g), segments_n=torch.randint(-1, 4, (10,), generator=g),
        images=torch.zeros(images, 3, height, width), pixel_superpixel=pixel_superpixel, pair_voxel=pair_voxel,
        pair_superpixel=pixel_superpixel[pair_pixel], pair_pixel=pair_pixel, num_points=20)
    return voxels, pixels, scalr_voxels, maps, batch


def test_distillation_loss_is_the_weighted_sum_of_every_term() -> None:
    voxels, pixels, scalr_voxels, maps, batch = _batch()
    w = LossConfig(vfm=0.5, tmp=2.0, p2s=1.5, ppkt=3.0, scalr=0.25, p2s_max_points=10**6, ppkt_pairings=10**6)
    out = distillation_loss(voxels, pixels, batch, w, scalr_voxels=scalr_voxels, teacher_maps=maps)
    assert tuple(out) == TERMS == ("total", "vfm", "tmp", "p2s", "ppkt", "scalr")
    seal = seal_loss(voxels, pixels, batch, w)
    for term in ("vfm", "tmp", "p2s"):
        torch.testing.assert_close(out[term], seal[term])
    ppkt = ref_ppkt(voxels, batch.pair_voxel, pixels, batch.pair_pixel)
    scalr = ref_scalr(scalr_voxels, batch.pair_voxel, maps, batch.pair_pixel, (6, 5))
    torch.testing.assert_close(out["ppkt"].double(), ppkt, atol=ATOL, rtol=0)
    torch.testing.assert_close(out["scalr"].double(), scalr, atol=ATOL, rtol=0)
    expected = 0.5 * out["vfm"] + 2.0 * out["tmp"] + 1.5 * out["p2s"] + 3.0 * out["ppkt"] + 0.25 * out["scalr"]
    torch.testing.assert_close(out["total"], expected)
    assert all(v.dtype == torch.float32 and math.isfinite(v.item()) for v in out.values())


@pytest.mark.parametrize("objective, on", [("ppkt", {"ppkt"}), ("scalr", {"scalr"}), ("slidr", {"vfm"}),
                                           ("seal", {"vfm", "tmp", "p2s"})])
def test_switched_off_terms_are_attached_zeros(objective, on) -> None:
    """Each objective's weights: its terms are computed, every other one is a zero still in the graph, and every
    input (H_p, H_i and the ScaLR head) gets a gradient (DDP must see each parameter used)."""
    cfg = build_config(REGISTRY["pretrain"], "tiny", {}, [], objective)
    voxels, pixels, scalr_voxels, maps, batch = _batch(5)
    with_head = cfg.loss.scalr > 0
    out = distillation_loss(voxels, pixels, batch, cfg.loss, torch.Generator().manual_seed(0),
                            scalr_voxels=scalr_voxels if with_head else None, teacher_maps=maps)
    for term in TERMS[1:]:
        assert (out[term].item() != 0.0) == (term in on), (objective, term)
        assert out[term].requires_grad
    inputs = [voxels, pixels, *([scalr_voxels] if with_head else [])]
    grads = torch.autograd.grad(out["total"], inputs)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if objective == "scalr":
        assert torch.count_nonzero(grads[0]) == 0 and torch.count_nonzero(grads[1]) == 0  # H_p, H_i: zeros only


def test_scalr_weight_without_the_head_is_an_error() -> None:
    voxels, pixels, _, maps, batch = _batch()
    with pytest.raises(ValueError, match="ScaLR head"):
        distillation_loss(voxels, pixels, batch, LossConfig(scalr=1.0), teacher_maps=maps)


def test_objective_files_set_the_weights_and_compose_with_presets_and_overrides(capsys) -> None:
    pretrain = REGISTRY["pretrain"]
    weights = lambda cfg: (cfg.vfm, cfg.tmp, cfg.p2s, cfg.ppkt, cfg.scalr)  # noqa: E731
    assert weights(build_config(pretrain, "tiny", {}, []).loss) == (1, 1, 1, 0, 0)
    assert weights(build_config(pretrain, "tiny", {}, [], "seal").loss) == (1, 1, 1, 0, 0)
    assert weights(build_config(pretrain, "tiny", {}, [], "scalr").loss) == (0, 0, 0, 0, 1)
    ppkt = build_config(pretrain, "tiny", {}, [], "ppkt")
    assert weights(ppkt.loss) == (0, 0, 0, 1, 0) and ppkt.loss.ppkt_pairings == 4096 and ppkt.loss.tau == 0.07
    assert ppkt.superpixels.slic.n_segments == 60  # the preset's keys the objective leaves alone
    slidr = build_config(pretrain, "nuscenes", {}, ["superpixels.method=sam"], "slidr")
    assert weights(slidr.loss) == (1, 0, 0, 0, 0)
    assert slidr.superpixels.method == "sam"  # key=value overrides come last
    assert build_config(pretrain, "tiny", {}, ["superpixels.method=sam"]).superpixels.method == "sam"
    assert build_config(pretrain, None, {}, [], "slidr").superpixels.method == "slic"
    mixed = build_config(pretrain, "tiny", {}, ["loss.tmp=0.5"], "ppkt")
    assert weights(mixed.loss) == (0, 0.5, 0, 1, 0)
    assert main(["config", "pretrain", "--config", "tiny", "--objective", "scalr"]) == 0
    out = capsys.readouterr().out
    assert "scalr: 1.0" in out and "ppkt_pairings: 4096" in out
    with pytest.raises(SystemExit):
        main(["pretrain", "DATA", "--objective", "nope"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["pretrain", "DATA", "loss.ppkt=-1"]) == 2
    assert "loss.ppkt" in capsys.readouterr().err
    assert main(["pretrain", "DATA", "--config", "ppkt"]) == 2
    assert "use --objective ppkt" in capsys.readouterr().err


def test_the_registered_objectives_are_config_layers_with_their_sources() -> None:
    assert OBJECTIVES.names() == ("ppkt", "scalr", "seal", "slidr")
    loss_keys = {f.name for f in dataclasses.fields(LossConfig)}
    superpixel_keys = {f.name for f in dataclasses.fields(SuperpixelConfig)}
    for name, objective in OBJECTIVES.items():
        assert isinstance(objective, Objective) and objective.title and OBJECTIVES.source(name) == "seal"
        assert re.search(r"\b(19|20)\d\d\b", objective.source), name  # a paper (and year) for every objective
        layer = objective.layer()
        assert set(layer) <= {"loss", "superpixels"} and set(layer["loss"]) <= loss_keys
        assert set(TERMS[1:]) <= set(layer["loss"])  # every term's weight is set: objectives never mix by accident
        assert set(layer.get("superpixels", {})) <= superpixel_keys
        layer["loss"]["vfm"] = 123.0
        assert objective.layer()["loss"]["vfm"] != 123.0  # a fresh copy each time
    assert OBJECTIVES.get("slidr").layer()["superpixels"] == {"method": "slic"}
    assert "valeoai/SLidR" in OBJECTIVES.get("ppkt").source and "valeoai/ScaLR" in OBJECTIVES.get("scalr").source


def test_load_config_takes_dict_layers_and_unknown_objectives_list_the_names() -> None:
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import load_config

    cfg = load_config(PretrainSchema, [{"loss": {"vfm": 0.5}}, {"loss": {"tmp": 0.25}}], ["loss.p2s=0"])
    assert (cfg.loss.vfm, cfg.loss.tmp, cfg.loss.p2s) == (0.5, 0.25, 0)
    with pytest.raises(ConfigError, match="a dict layer"):
        load_config(PretrainSchema, [{"loss": {"nope": 1.0}}])
    with pytest.raises(ConfigError, match="unknown pretraining objective; choose one of ppkt, scalr, seal, slidr"):
        build_config(REGISTRY["pretrain"], "tiny", {}, [], "nope")


# ----------------------------------------------------------------------------------------------------------------
# On real collated batches and through `seal pretrain`
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("objectives") / "synth", sequences=1, frames=3, seed=3,
                            cameras=1, image_width=224, azimuth_steps=720, progress=False)


def test_collated_pair_pixel_indexes_the_pairings_pixel(tiny_data) -> None:
    from seal.data import open_dataset
    from seal.engine.pretrain import pair_samples
    from seal.samples.pairs import collate_pairs

    cfg = build_config(REGISTRY["pretrain"], "tiny", {}, [f"data.path={tiny_data}", *FAST])
    samples = pair_samples(cfg, open_dataset(tiny_data))
    items = [samples[0], samples[1]]
    batch = collate_pairs(items)
    images, _, height, width = batch.images.shape
    assert batch.pair_pixel.dtype == torch.long and batch.pair_pixel.shape == batch.pair_voxel.shape
    assert batch.pair_pixel.numel() > 0 and 0 <= batch.pair_pixel.min()
    assert batch.pair_pixel.max() < images * height * width
    torch.testing.assert_close(batch.pixel_superpixel[batch.pair_pixel], batch.pair_superpixel, rtol=0, atol=0)
    expected = []  # image * H * W + row * W + col, sample by sample
    image_offset = 0
    for s in items:
        for i in range(s.images.shape[0]):
            sel = s.pair_image == i
            expected += ((image_offset + i) * height * width + s.pair_row[sel] * width + s.pair_col[sel]).tolist()
        image_offset += s.images.shape[0]
    assert batch.pair_pixel.tolist() == expected


def _metrics(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


# the same 2 frame pairs at every step (one step per epoch), without the random 3D and image augmentations
SAME = ["augment.rotate=false", "augment.flip=false", "augment.cuboid_drop=false", "augment.hflip=false",
        "augment.crop_scale=[1.0,1.0]"]


@pytest.mark.parametrize("objective, lr", [("ppkt", 0.005), ("scalr", 0.2)])
def test_a_few_pretraining_steps_lower_the_objective(objective, lr, tiny_data, tmp_path) -> None:
    """`seal pretrain DATA --config tiny --objective NAME`: the objective's term falls over a few steps, the others
    stay zero, and the ScaLR head exists exactly when loss.scalr > 0 (other runs keep Seal's checkpoint layout).
    The learning rates suit each loss's scale (InfoNCE at tau 0.07 vs a distance of unit vectors)."""
    run = tmp_path / "run"
    argv = ["pretrain", str(tiny_data), "--config", "tiny", "--objective", objective, *FAST, *SAME, "optim.epochs=50",
            "train.max_steps=4", f"optim.lr={lr}", f"train.run_dir={run}"]
    with pytest.warns(UserWarning, match="RANDOM"):
        assert main(argv) == 0
    rows = _metrics(run)
    assert len(rows) == 4 and all(f"loss/{t}" in rows[0] for t in TERMS)
    for term in TERMS[1:]:
        if term != objective:
            assert all(r[f"loss/{term}"] == 0.0 for r in rows), term
    values = [r[f"loss/{objective}"] for r in rows]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert values[-1] < values[0] - 0.02 * abs(values[0]), values
    model = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)["model"]
    assert any(k.startswith("head_scalr.") for k in model) == (objective == "scalr")
