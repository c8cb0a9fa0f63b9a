"""Divergence (issue 20, case 1): a non-finite loss term, gradient, weight or BatchNorm statistic stops the run at
that step with one line (exit status 3), keeps the last good checkpoint as it was, exports nothing and records the
divergence in a summary.json that strict JSON readers take; downstream commands refuse a non-finite backbone."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seal.cli.main import main
from seal.core.errors import Diverged
from seal.engine.pretrain import PretrainTask
from seal.engine.rundir import write_summary
from seal.engine.trainer import Trainer

FAST = ["--config", "tiny", "augment.crop_size=[56,104]", "augment.min_pairings_per_image=32", "train.batch_size=1",
        "train.num_workers=0", "train.log_every=1", "optim.epochs=3", "train.max_steps=2", "train.deterministic=true"]


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _one_error(err: str) -> str:
    assert "Traceback" not in err, err[-2000:]
    lines = re.findall(r"seal: error: [^\r\n]*", err)
    assert len(lines) == 1, err[-2000:]
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two frames: one frame pair, one optimiser step per epoch (each epoch's end is checkpointed)."""
    from seal.synth import generate_dataset

    root = generate_dataset(tmp_path_factory.mktemp("diverge") / "synth", sequences=1, frames=2, seed=3, cameras=1,
                            image_width=320, azimuth_steps=512, progress=False)
    for stage in ("superpixels", "superpoints"):  # the stage caches, so that each test times its own training
        assert main([stage, str(root), "--config", "tiny"]) == 0
    return root


def test_a_nan_loss_stops_the_run_with_one_line_and_exports_nothing(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", str(data), *FAST, "optim.lr=1e30", f"train.run_dir={run}"]) == Diverged.exit_code
    line = _one_error(capsys.readouterr().err)
    assert re.search(r"pretrain diverged at optimiser step 2 \(lr [^)]+\): loss term vfm is nan", line), line
    assert "nothing was exported" in line and f"{run / 'checkpoints' / 'last.pt'} (optimiser step 1)" in line
    assert not (run / "backbone.pt").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step-1.pt"]
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["global_step"] == 1
    summary = _strict((run / "summary.json").read_text())
    assert summary["diverged"] and summary["divergence"]["step"] == 2 and summary["last_good_step"] == 1
    assert summary["loss_at_divergence"]["vfm"] is None                      # NaN written as null
    assert "nan" in (run / "metrics.csv").read_text().splitlines()[-1]       # the diverged step is logged


def _spoil_on_second_step(monkeypatch, spoil, seen: dict) -> None:
    original = PretrainTask.loss
    calls = {"n": 0}

    def loss(self, model, batch, generator):
        calls["n"] += 1
        out = original(self, model, batch, generator)
        if calls["n"] == 2:  # step 1 is checkpointed by now: remember it to compare afterwards
            last = self.cfg.train.run_dir + "/checkpoints/last.pt"
            seen["last"] = _digest(Path(last))
            spoil(self.student, out)
        return out

    monkeypatch.setattr(PretrainTask, "loss", loss)


def _inf_running_var(student, losses) -> None:
    bn = next(m for m in student.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    bn.running_var = torch.full_like(bn.running_var, math.inf)  # what lr=1e6 does while the loss looks normal


def _nan_gradient(student, losses) -> None:
    param = next(p for p in student.backbone.parameters() if p.requires_grad)
    param.register_hook(lambda g: g * math.nan)


@pytest.mark.parametrize("spoil, culprit", [
    (_inf_running_var, r"buffer backbone\.\S+\.running_var is inf \(\d+ of \d+ values not finite\) after the step"),
    (_nan_gradient, r"the gradient of parameter backbone\.\S+ is nan"),
])
def test_a_non_finite_buffer_or_gradient_with_a_finite_loss_is_named(spoil, culprit, data, tmp_path, capsys,
                                                                      monkeypatch):
    run = tmp_path / "run"
    seen: dict = {}
    _spoil_on_second_step(monkeypatch, spoil, seen)
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={run}"]) == 3
    line = _one_error(capsys.readouterr().err)
    assert "diverged at optimiser step 2" in line and re.search(culprit, line), line
    assert not (run / "backbone.pt").exists()
    assert _digest(run / "checkpoints" / "last.pt") == seen["last"]        # the last good checkpoint, untouched
    assert not (run / "checkpoints" / "step-2.pt").exists()
    assert _strict((run / "summary.json").read_text())["divergence"]["step"] == 2


def _stub_trainer(use_amp: bool) -> tuple[Trainer, dict]:
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    module[0].weight.grad = torch.full_like(module[0].weight, math.inf)
    trainer = Trainer.__new__(Trainer)
    trainer.module, trainer.use_amp = module, use_amp
    trainer.dist = SimpleNamespace(enabled=False)
    trainer.task = SimpleNamespace(terms=("total", "vfm"))
    return trainer, {"total": torch.tensor(1.0), "vfm": torch.tensor(1.0)}


def test_inf_gradients_under_amp_are_the_scalers_business_not_divergence():
    trainer, sums = _stub_trainer(use_amp=True)
    assert trainer._nonfinite(sums) is None                 # GradScaler skips that step and lowers its scale
    trainer, sums = _stub_trainer(use_amp=False)
    assert trainer._nonfinite(sums) == "the gradient of parameter 0.weight is inf (6 of 6 values not finite)"
    trainer, sums = _stub_trainer(use_amp=True)
    sums["vfm"] = torch.tensor(math.inf)                    # a non-finite loss counts, AMP or not
    assert trainer._nonfinite(sums).startswith("loss term vfm is inf")
    trainer, sums = _stub_trainer(use_amp=True)
    trainer.module[1].running_var[1] = math.nan
    assert trainer._nonfinite(sums) == "buffer 1.running_var is nan (1 of 2 values not finite) after the step"
    trainer, sums = _stub_trainer(use_amp=True)
    trainer.module[0].weight.grad = None
    trainer.module[0].weight.data.fill_(3e38)               # huge but finite: no false alarm (no 2-norm overflow)
    assert trainer._nonfinite(sums) is None


def test_summary_json_is_strict_json():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        write_summary(Path(folder), {"miou": math.nan, "loss": {"total": math.inf, "vfm": np.float32("nan")},
                                     "rows": [1.5, -math.inf, np.float64(2.0)], "ok": "nan", "path": Path("/x")})
        summary = _strict((Path(folder) / "summary.json").read_text())
    assert summary == {"miou": None, "loss": {"total": None, "vfm": None}, "rows": [1.5, None, 2.0], "ok": "nan",
                       "path": "/x"}


def _bad_backbone(path: Path) -> str:
    from seal.core.config import BackboneConfig
    from seal.models.backbones import build_backbone
    from seal.models.export import export_backbone

    backbone = build_backbone(BackboneConfig(stem_channels=8, planes=[8] * 8, layers=[1] * 8))
    name, buffer = next((n, b) for n, b in backbone.named_buffers() if n.endswith("running_var"))
    buffer.fill_(math.inf)
    export_backbone(path, backbone, {"voxel_size": 0.1})
    return name


def test_downstream_refuses_a_non_finite_backbone_before_making_a_run_folder(data, tmp_path, capsys):
    bad = tmp_path / "backbone.pt"
    name = _bad_backbone(bad)
    run = tmp_path / "probe"
    assert main(["probe", str(data), "--pretrained", str(bad), f"train.run_dir={run}"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert f"{bad}: holds non-finite weights: {name} is inf" in line and "diverged" in line, line
    assert not run.exists()


def test_evaluate_refuses_a_non_finite_model(data, tmp_path, capsys):
    from seal.core.config import BackboneConfig
    from seal.models.backbones import build_backbone
    from seal.models.segmentation import SegmentationModel, save_model

    model = SegmentationModel(build_backbone(BackboneConfig(stem_channels=8, planes=[8] * 8, layers=[1] * 8)), 19)
    model.classifier.bias.data[3] = math.nan
    save_model(tmp_path / "model.pt", model, {"voxel": {"voxel_size": 0.1}, "label_map": "semantickitti"})
    out = tmp_path / "eval"
    assert main(["evaluate", str(tmp_path / "model.pt"), str(data), "--out", str(out)]) == 2
    line = _one_error(capsys.readouterr().err)
    assert f"{tmp_path / 'model.pt'}: holds non-finite weights: classifier.bias is nan (1 of 19" in line, line
    assert not out.exists()
