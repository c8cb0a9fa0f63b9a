"""Sparse-engine selection on a CPU machine, a backbone state-dict layout that depends on the config alone, and the
registries of engines and 3D backbones.

(The CUDA side, spconv-triton on a GPU against spconv on the CPU, is tests/test_cuda.py.)
"""

from __future__ import annotations

import pytest
import torch

from seal.core.config import BackboneConfig
from seal.core.errors import ConfigError, DataError, SealError
from seal.models import sparse
from seal.models.backbones import BACKBONES, BackboneSpec, build_backbone
from seal.models.minkunet import MinkUNet

TINY = BackboneConfig(stem_channels=16, planes=[16, 32, 48, 64, 48, 32, 32, 32], layers=[1] * 8)


@pytest.fixture(autouse=True)
def _restore_engine():
    """Every test leaves the process's engine choice as it found it."""
    saved = dict(sparse._chosen)
    yield
    sparse._chosen.clear()
    sparse._chosen.update(saved)
    sparse.spconv.cache_clear()


@pytest.fixture
def needs_spconv():
    if "spconv" not in sparse.installed_engines():
        pytest.skip(f"spconv is not installed ({sparse.ENGINES.get('spconv').install})")


def test_engine_selection_on_a_cpu(needs_spconv):
    assert sparse.select_engine("auto", "cpu") == "spconv"
    assert sparse.current_engine() == "spconv"
    import spconv.pytorch

    assert sparse.spconv() is spconv.pytorch
    # spconv-triton is GPU-only: on a CPU it is refused whether or not it is installed
    with pytest.raises(SealError, match="spconv-triton"):
        sparse.select_engine("spconv-triton", "cpu")
    with pytest.raises(ConfigError, match="unknown"):
        sparse.select_engine("minkowski", "cpu")
    with pytest.raises(ConfigError):
        sparse.select_engine("", "cpu")


def _layout(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(name, tuple(t.shape), t.dtype) for name, t in model.state_dict().items()]


@pytest.mark.parametrize("config", [TINY, BackboneConfig()], ids=["tiny", "Res16UNet34C"])
def test_backbone_state_dict_layout_depends_on_the_config_only(needs_spconv, config):
    sparse.select_engine("spconv", "cpu")
    torch.manual_seed(0)
    first = MinkUNet(config)
    sparse.spconv.cache_clear()  # a fresh import of the engine module, other weights: the same layout
    torch.manual_seed(1)
    second = MinkUNet(BackboneConfig(**vars(config)))
    assert _layout(first) == _layout(second)
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                      strict=True)), "different seeds gave the same weights"
    # one entry per parameter or buffer: 3x3x3 submanifold kernels stored as [out, 3, 3, 3, in] (KRSC), which is
    # the layout spconv-triton reads as well (tests/test_cuda.py loads one into the other)
    stem = first.state_dict()["stem.0.weight"]
    assert tuple(stem.shape) == (config.stem_channels, 3, 3, 3, config.in_channels)
    second.load_state_dict(first.state_dict())  # strict: names and shapes agree
    widths = MinkUNet(BackboneConfig(**{**vars(config), "stem_channels": config.stem_channels * 2}))
    assert _layout(widths) != _layout(first)


def test_spconv_cpu_gives_the_same_result_on_two_threads_as_on_one(needs_spconv):
    """Each output of a sparse convolution is a sum over its neighbours; with more threads only the summation order
    may change. spconv's own CPU scatter-add races (rows land on the wrong outputs); seal.models.sparse replaces
    it, and this catches the race if the replacement is ever lost."""
    sparse.select_engine("spconv", "cpu")
    gen = torch.Generator().manual_seed(0)
    cells = torch.randperm(160 * 160 * 12, generator=gen)[:15_000]
    coords = torch.stack([torch.zeros_like(cells), cells // (160 * 12), (cells // 12) % 160, cells % 12], 1).int()
    feats = torch.rand(coords.shape[0], 1, generator=gen)
    torch.manual_seed(0)
    model = MinkUNet(TINY).eval()
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 2):
            torch.set_num_threads(count)
            x = feats.clone().requires_grad_(True)
            out = model(sparse.sparse_tensor(x, coords, 1))
            out.square().sum().backward()
            results.append((out.detach(), x.grad))
    finally:
        torch.set_num_threads(threads)
    (out1, dx1), *others = results
    for out, dx in others:
        assert float((out - out1).norm() / out1.norm()) < 1e-5
        assert float((dx - dx1).norm() / dx1.norm()) < 1e-4


@pytest.mark.parametrize("config", [TINY, BackboneConfig()], ids=["tiny", "Res16UNet34C"])
def test_both_engines_build_the_same_state_dict_layout(needs_spconv, config):
    """One state dict loads in either engine: the layout test that needs no GPU (building needs none; selecting
    "for cuda" lets the Triton engine construct its modules here)."""
    pytest.importorskip("spconv_triton")
    sparse.select_engine("spconv", "cpu")
    torch.manual_seed(0)
    reference = MinkUNet(config)
    sparse.select_engine("spconv-triton", "cuda")
    triton = MinkUNet(config)
    assert type(reference.stem[0]).__module__.startswith("spconv.")
    assert type(triton.stem[0]).__module__.startswith("spconv_triton")
    assert _layout(reference) == _layout(triton)
    triton.load_state_dict(reference.state_dict())  # strict: every name and shape fits


# ----------------------------------------------------------------------------------------------------------------
# The engine and backbone registries
# ----------------------------------------------------------------------------------------------------------------


def test_the_engines_are_registered_specs():
    assert sparse.ENGINES.names() == ("spconv", "spconv-triton")
    assert sparse.ENGINES.choices() == ("auto", "spconv", "spconv-triton")
    cpu, triton = sparse.ENGINES.get("spconv"), sparse.ENGINES.get("spconv-triton")
    assert (cpu.module, cpu.gpu_only) == ("spconv", False) and cpu.api().__name__ == "spconv.pytorch"
    assert (triton.module, triton.gpu_only) == ("spconv_triton", True)
    assert "seal[cpu]" in cpu.install and "seal[gpu]" in triton.install
    assert sparse.installed_engines() == [n for n in sparse.ENGINES.names() if sparse.ENGINES.get(n).installed()]
    with pytest.raises(ConfigError) as err:
        sparse.select_engine("minkowski", "cpu")
    assert str(err.value) == ("model.engine='minkowski': unknown sparse engine; choose one of auto, spconv, "
                              "spconv-triton")


def test_auto_takes_a_gpu_only_engine_on_a_gpu_only(needs_spconv):
    pytest.importorskip("spconv_triton")
    assert sparse.select_engine("auto", "cuda") == "spconv-triton"  # selecting needs no GPU; running would
    assert sparse.select_engine("auto", "cpu") == "spconv"


def test_a_registered_engine_that_is_not_installed_gives_its_install_hint(monkeypatch):
    monkeypatch.setattr(sparse.ENGINES, "_entries", dict(sparse.ENGINES._entries))
    sparse.ENGINES.register("fake", sparse.EngineSpec("seal_no_such_engine", "seal_no_such_engine.pytorch",
                                                      "pip install seal-fake-engine"))
    assert "fake" not in sparse.installed_engines() and "fake" in sparse.ENGINES.choices()
    with pytest.raises(SealError, match="pip install seal-fake-engine"):
        sparse.select_engine("fake", "cpu")


def test_minkunet_is_the_registered_backbone(needs_spconv):
    sparse.select_engine("spconv", "cpu")
    assert BACKBONES.names() == ("minkunet", "waffleiron") and BackboneConfig().name == "minkunet"
    spec = BACKBONES.get("minkunet")
    assert isinstance(spec, BackboneSpec) and spec.network is MinkUNet and spec.title
    torch.manual_seed(0)
    built = build_backbone(TINY)
    torch.manual_seed(0)
    direct = MinkUNet(TINY)
    assert type(built) is MinkUNet and built.out_channels == TINY.planes[-1]
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), direct.state_dict().values(),
                                                 strict=True))  # the same numbers as before the registry
    assert built.describe() == f"MinkUNet planes {TINY.planes}"
    with pytest.raises(ConfigError, match="model.backbone.name='pointnet': unknown 3D backbone; choose one of "
                                          "minkunet, waffleiron"):
        build_backbone(BackboneConfig(name="pointnet"))


def test_exported_files_without_a_backbone_name_load_as_minkunet(needs_spconv, tmp_path):
    from seal.core.checkpoint import load_checkpoint, save_checkpoint
    from seal.models.export import export_backbone, load_backbone

    sparse.select_engine("spconv", "cpu")
    torch.manual_seed(0)
    backbone = build_backbone(TINY)
    payload = load_checkpoint(export_backbone(tmp_path / "new.pt", backbone, {"size": 0.1}))
    assert payload["backbone_config"]["name"] == "minkunet"
    old = {**payload, "backbone_config": {k: v for k, v in payload["backbone_config"].items() if k != "name"}}
    loaded, meta = load_backbone(save_checkpoint(tmp_path / "old.pt", old))
    assert type(loaded) is MinkUNet and loaded.config == TINY and meta["voxel"] == {"size": 0.1}
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in loaded.state_dict().items())
    other = {**payload, "backbone_config": {**payload["backbone_config"], "name": "waffleiron"}}
    with pytest.raises(DataError, match="other.pt.*waffleiron"):
        load_backbone(save_checkpoint(tmp_path / "other.pt", other))
