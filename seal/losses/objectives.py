"""The pretraining objectives ``seal pretrain --objective NAME`` picks: each one a set of `seal.losses.family`
weights (``loss.*``) and, for SLidR, its superpixel method, with the sources its values come from.

An objective is a config layer: `seal.cli.registry.build_config` puts `Objective.layer` over ``--config`` and under
the options and ``key=value`` overrides, so ``--objective ppkt loss.tmp=0.5`` mixes terms. A third-party objective
registers an `Objective` (or any object with ``layer() -> dict``) through the entry-point group
``seal.objectives``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seal.core.registry import Registry


@dataclass(frozen=True)
class Objective:
    """One pretraining objective: ``loss`` holds `LossConfig` keys, ``superpixels`` `SuperpixelConfig` keys (empty:
    the ``--config`` preset's), ``source`` the papers and code the values follow (what `seal config` users read)."""

    title: str
    loss: dict[str, Any]
    source: str
    superpixels: dict[str, Any] = field(default_factory=dict)

    def layer(self) -> dict[str, Any]:
        """The config layer this objective puts over ``--config`` (a fresh copy)."""
        out: dict[str, Any] = {"loss": dict(self.loss)}
        if self.superpixels:
            out["superpixels"] = dict(self.superpixels)
        return out


OBJECTIVES: Registry[Objective] = Registry("pretraining objective", "seal.objectives", option="--objective")

OBJECTIVES.register("ppkt", Objective(
    "PPKT: point-to-pixel InfoNCE on pairings sampled per batch; no superpixels, no temporal terms",
    {"vfm": 0.0, "tmp": 0.0, "p2s": 0.0, "ppkt": 1.0, "scalr": 0.0,
     "tau": 0.07,            # NCE_temperature: 0.07
     "ppkt_pairings": 4096},  # num_matches: 4096 (pairings drawn per micro-batch, without replacement)
    # model_n_out: 64 -> model.proj_dim (the heads H_p, H_i) is the presets'. SLidR's PPKT image decoder ("ppkt")
    # is its own upsampling head; seal uses H_i (1x1 conv, bilinear, L2) for all objectives.
    "PPKT (Liu et al., 2021, \"Learning from 2D: Contrastive Pixel-to-Point Knowledge Transfer\"), as "
    "re-implemented by SLidR (valeoai/SLidR config/ppkt_nuscenes.yaml, pretrain/lightning_trainer.py `loss`, "
    "pretrain/criterion.py NCELoss)"))

OBJECTIVES.register("scalr", Objective(
    "ScaLR: each paired point's 3D feature regresses the frozen teacher's feature at its pixel",
    # L = mean over pairings of ||k - t||_2, k through a linear head to the teacher's width (added to the student
    # only when loss.scalr > 0), both L2-normalised. No superpixels, no contrast, no 2D head. ScaLR's teacher is
    # DINOv2 (ViT-S/B/L 14, features upsampled to the image size): set teacher.backbone=vit_*_patch14_dinov2 and
    # teacher.weights for real runs. ScaLR's optimiser (AdamW, warm-up + cosine) and WaffleIron backbone are not
    # part of this objective: optim/model are the preset's.
    {"vfm": 0.0, "tmp": 0.0, "p2s": 0.0, "ppkt": 0.0, "scalr": 1.0},
    "ScaLR (Puy et al., CVPR 2024, \"Three Pillars improving Vision Foundation Model Distillation for Lidar\"; "
    "docs/METHOD.md §11; valeoai/ScaLR utils/distiller.py, models/image_teacher.py)"))

OBJECTIVES.register("seal", Objective(
    "Seal: L = L_vfm + L_tmp + L_p2s (the default, the same as no --objective)",
    # all weights 1 (the paper's total), tau 0.07. The superpixel method is the --config preset's (slic | sam | hf
    # | precomputed: Seal's are VFM ones).
    {"vfm": 1.0, "tmp": 1.0, "p2s": 1.0, "ppkt": 0.0, "scalr": 0.0, "tau": 0.07},
    "Seal (Liu et al., NeurIPS 2023; docs/METHOD.md §6)"))

OBJECTIVES.register("slidr", Objective(
    "SLidR: L_vfm alone (superpixel-to-superpoint InfoNCE) with SLIC superpixels",
    {"vfm": 1.0, "tmp": 0.0, "p2s": 0.0, "ppkt": 0.0, "scalr": 0.0,
     "tau": 0.07},  # NCE_temperature: 0.07 (config/slidr_minkunet.yaml)
    "SLidR (Sautier et al., CVPR 2022; docs/METHOD.md §11): loss_superpixels_average in valeoai/SLidR "
    "pretrain/lightning_trainer.py",
    # slic(n_segments=150, compactness=6, sigma=3.0) (superpixel_segmenter.py) -> the superpixels.slic defaults,
    # left to the --config preset here (the tiny preset lowers n_segments to 60 for its small images)
    {"method": "slic"}))

__all__ = ["OBJECTIVES", "Objective"]
