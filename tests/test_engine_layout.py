"""The two sparse engines build the same network: one state dict loads in both (checked on a CPU)."""

from __future__ import annotations

import pytest
import torch

from seal.core.config import BackboneConfig
from seal.models import sparse
from seal.models.minkunet import MinkUNet

TINY = BackboneConfig(stem_channels=16, planes=[16, 32, 48, 64, 48, 32, 32, 32], layers=[1, 1, 1, 1, 1, 1, 1, 1])


def _build(engine: str, device: str, config: BackboneConfig) -> MinkUNet:
    sparse.select_engine(engine, device)
    try:
        torch.manual_seed(0)
        return MinkUNet(config)
    finally:
        sparse.select_engine("auto", "cpu")


@pytest.mark.parametrize("config", [TINY, BackboneConfig()], ids=["tiny", "Res16UNet34C"])
def test_both_engines_build_the_same_state_dict_layout(config):
    pytest.importorskip("spconv_triton")
    reference = _build("spconv", "cpu", config)
    # building needs no GPU; selecting "for cuda" lets the Triton engine construct its modules here
    triton = _build("spconv-triton", "cuda", config)
    assert type(triton.stem[0]).__module__.startswith("spconv_triton")
    assert type(reference.stem[0]).__module__.startswith("spconv.")
    a, b = reference.state_dict(), triton.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    triton.load_state_dict(a)  # strict: every name and shape fits


def test_engine_choice_and_its_errors():
    assert sparse.select_engine("auto", "cpu") == "spconv"
    with pytest.raises(Exception, match="model.engine"):
        sparse.select_engine("spconv-triton", "cpu")
    with pytest.raises(Exception, match="unknown"):
        sparse.select_engine("minkowski", "cpu")
    assert sparse.current_engine() == "spconv"
