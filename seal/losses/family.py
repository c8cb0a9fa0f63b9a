"""The image-to-LiDAR distillation family as loss terms of one weighted sum (docs/METHOD.md §6 and §11).

- **Seal** (vfm + tmp + p2s): `seal.losses.distill.seal_loss`.
- **SLidR** (Sautier et al., CVPR 2022): L_vfm alone with SLIC superpixels - weights, no code of its own.
- **PPKT** (Liu et al., 2021), `ppkt_loss`: point-to-pixel InfoNCE between the 3D embedding of a paired voxel
  (head H_p) and the 2D embedding of its pixel (head H_i), on pairings sampled per micro-batch.
- **ScaLR** (Puy et al., CVPR 2024), `scalr_loss`: each paired voxel's embedding through a linear head to the
  teacher's width regresses the frozen teacher's own feature at its pixel; no superpixels, no contrast, no 2D head.

`distillation_loss` returns every term, whatever the weights: a term with weight 0 is not computed and is a float32
zero attached to every input (so DDP sees every parameter used). The pixel of pairing p is
``batch.pair_pixel[p] = image * H * W + row * W + col``, the row order of the 2D head's flattened output.
Pairings must index rows of the features and pixels of the maps they are read from; as in `seal.losses.distill`
this is not checked here (it would be a host sync every step): collation checks a `PairBatch` on the CPU.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seal.core.batch import PairBatch
from seal.core.config import LossConfig
from seal.losses.distill import _zero, info_nce, seal_loss

__all__ = ["TERMS", "distillation_loss", "ppkt_loss", "scalr_loss", "teacher_features_at"]

TERMS: tuple[str, ...] = ("total", "vfm", "tmp", "p2s", "ppkt", "scalr")


def _check_pairings(pair_voxel: Tensor, pair_pixel: Tensor, what: str) -> None:
    """Shapes only: index ranges are checked at collation (`PairBatch.check`), never on device tensors here."""
    if pair_voxel.dim() != 1 or pair_voxel.shape != pair_pixel.shape:
        raise ValueError(f"{what}: pair_voxel and pair_pixel must be 1-D of equal length, got "
                         f"{tuple(pair_voxel.shape)} and {tuple(pair_pixel.shape)}")


def ppkt_loss(point_features: Tensor, pair_voxel: Tensor, pixel_features: Tensor, pair_pixel: Tensor,
              tau: float = 0.07, num_pairings: int | None = 4096, generator: torch.Generator | None = None) -> Tensor:
    """L_ppkt, PPKT's point-to-pixel InfoNCE, as SLidR's re-implementation computes it (``loss`` in
    pretrain/lightning_trainer.py with NCELoss of pretrain/criterion.py, config/ppkt_nuscenes.yaml).

    ``point_features`` [M, D]: L2-normalised 3D embeddings (H_p); ``pixel_features`` [Q, D]: L2-normalised 2D
    embeddings of every pixel (H_i); pairing p joins voxel ``pair_voxel[p]`` and pixel ``pair_pixel[p]``.
    ``num_pairings`` of the P pairings of the micro-batch are drawn uniformly without replacement (all of them
    when P <= num_pairings or it is None; reproducible with ``generator``). With k_p / q_p the 3D / 2D embeddings
    of sampled pairing p:

        L = -1/S sum_p log( exp(<k_p, q_p>/tau) / sum_j exp(<k_p, q_j>/tau) )

    over the S sampled pairings: the positive is the pixel the point projects to, the negatives are the pixels of
    the other sampled pairings of the batch (all images, all samples). No pairing: an attached zero.
    """
    if point_features.dim() != 2 or pixel_features.dim() != 2:
        raise ValueError(f"ppkt_loss: features must be [N, D], got {tuple(point_features.shape)} and "
                         f"{tuple(pixel_features.shape)}")
    if point_features.shape[1] != pixel_features.shape[1]:
        raise ValueError(f"ppkt_loss: 3D features have {point_features.shape[1]} channels but 2D features "
                         f"{pixel_features.shape[1]} (they must match)")
    if num_pairings is not None and num_pairings <= 0:
        raise ValueError(f"ppkt_loss: num_pairings must be positive or None, got {num_pairings}")
    _check_pairings(pair_voxel, pair_pixel, "ppkt_loss")
    if pair_voxel.numel() == 0:
        return _zero(point_features, pixel_features)
    if num_pairings is not None and pair_voxel.numel() > num_pairings:
        gen_device = generator.device if generator is not None else pair_voxel.device
        pick = torch.randperm(pair_voxel.numel(), generator=generator, device=gen_device)[:num_pairings]
        pick = pick.to(pair_voxel.device)
        pair_voxel, pair_pixel = pair_voxel[pick], pair_pixel[pick]
    return info_nce(point_features[pair_voxel.long()], pixel_features[pair_pixel.long()], tau)


def teacher_features_at(teacher_maps: Tensor, pair_pixel: Tensor, image_size: tuple[int, int]) -> Tensor:
    """The frozen teacher's features [P, C] (float32) at the pairings' pixels, at image resolution.

    Equal to ``F.interpolate(teacher_maps, size=image_size, mode="bilinear", align_corners=False)`` read at each
    pixel - the resampling the 2D head H_i applies - without building the [I, C, H, W] upsampled map (a ViT-L map
    of 24 crops would take gigabytes): the four neighbours of each pixel's source position are blended as PyTorch's
    ``upsample_bilinear2d`` does (source = (dst + 0.5) * in / out - 0.5, clamped at 0 and at the last row/column).
    """
    if teacher_maps.dim() != 4:
        raise ValueError(f"teacher_features_at: teacher maps must be [I, C, h, w], got {tuple(teacher_maps.shape)}")
    images, channels, h, w = teacher_maps.shape
    height, width = int(image_size[0]), int(image_size[1])
    pixel = pair_pixel.long()
    image, rest = pixel // (height * width), pixel % (height * width)
    row, col = rest // width, rest % width

    def source(dst: Tensor, size_in: int, size_out: int) -> tuple[Tensor, Tensor, Tensor]:
        pos = ((dst.double() + 0.5) * (size_in / size_out) - 0.5).clamp(min=0)
        low = pos.floor().long().clamp(max=size_in - 1)
        high = (low + 1).clamp(max=size_in - 1)
        return low, high, (pos - low).float().clamp(0, 1).unsqueeze(1)

    y0, y1, ly = source(row, h, height)
    x0, x1, lx = source(col, w, width)
    flat = teacher_maps.detach().permute(0, 2, 3, 1).reshape(images * h * w, channels)
    base = image * (h * w)

    def at(y: Tensor, x: Tensor) -> Tensor:
        return flat[base + y * w + x].float()

    return ((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1))
            + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)))


def scalr_loss(point_features: Tensor, pair_voxel: Tensor, teacher_maps: Tensor, pair_pixel: Tensor,
               image_size: tuple[int, int]) -> Tensor:
    """L_scalr, ScaLR's distillation loss (utils/distiller.py and models/image_teacher.py of valeoai/ScaLR).

    ``point_features`` [M, C]: the 3D embeddings through the student's ScaLR head (a linear layer from the backbone
    width to the teacher's width C, then L2 normalisation); ``teacher_maps`` [I, C, h, w]: the frozen teacher's raw
    feature maps of the batch's I crops of ``image_size`` (H, W). For each pairing p, k_p = the 3D embedding of
    voxel ``pair_voxel[p]`` and t_p = the L2-normalised teacher feature at pixel ``pair_pixel[p]``:

        L = 1/P sum_p || k_p - t_p ||_2

    the mean Euclidean distance, not squared (ScaLR: ``torch.norm(k - q, dim=1, p=2).mean()``; for unit vectors
    ||k - t||^2 = 2 - 2 cos(k, t)). The target is frozen: the teacher's features are used as they are (no 2D head)
    and carry no gradient. They are taken at image resolution: the teacher's map (stride 4 for the dilated ResNet,
    the patch size for a ViT) is bilinearly upsampled to the crop size (`teacher_features_at`, the resampling H_i
    applies, align_corners=False). ScaLR upsamples DINOv2 patch features by the patch size with align_corners=True
    on crops that are multiples of the patch size; the two differ by under a patch near the borders. No pairing:
    an attached zero.
    """
    if point_features.dim() != 2:
        raise ValueError(f"scalr_loss: point_features must be [M, C], got {tuple(point_features.shape)}")
    if teacher_maps.dim() != 4 or teacher_maps.shape[1] != point_features.shape[1]:
        raise ValueError(f"scalr_loss: teacher maps must be [I, C, h, w] with C = {point_features.shape[1]} (the "
                         f"3D head's width), got {tuple(teacher_maps.shape)}")
    _check_pairings(pair_voxel, pair_pixel, "scalr_loss")
    if pair_voxel.numel() == 0:
        return _zero(point_features)
    target = torch.nn.functional.normalize(teacher_features_at(teacher_maps, pair_pixel, image_size), dim=1)
    return torch.linalg.vector_norm(point_features[pair_voxel.long()].float() - target, dim=1).mean()


def distillation_loss(voxels: Tensor, pixel_features: Tensor, batch: PairBatch, weights: LossConfig | None = None,
                      generator: torch.Generator | None = None, *, scalr_voxels: Tensor | None = None,
                      teacher_maps: Tensor | None = None) -> dict[str, Tensor]:
    """Every term of the family on one batch: ``{"total", "vfm", "tmp", "p2s", "ppkt", "scalr"}`` (float32).

    total = vfm L_vfm + tmp L_tmp + p2s L_p2s + ppkt L_ppkt + scalr L_scalr with the weights of ``weights``.
    ``voxels`` [M, D] / ``pixel_features`` [I*H*W, D]: the H_p / H_i embeddings (as for `seal_loss`);
    ``scalr_voxels`` [M, C]: the ScaLR head's embeddings and ``teacher_maps`` [I, C, h, w] the frozen teacher's
    maps, both needed only when ``weights.scalr > 0``. A term with weight 0 is not computed: it is a zero
    attached to every input given.
    """
    w = weights if weights is not None else LossConfig()
    inputs = [t for t in (voxels, pixel_features, scalr_voxels) if t is not None]
    out = seal_loss(voxels, pixel_features, batch, w, generator)
    zero = _zero(*inputs)
    out["total"] = out["total"] + zero  # the ScaLR head too is in the graph whichever terms are on
    out["ppkt"] = out["scalr"] = zero
    if w.ppkt != 0:
        out["ppkt"] = ppkt_loss(voxels, batch.pair_voxel, pixel_features, batch.pair_pixel, w.tau, w.ppkt_pairings,
                                generator)
    if w.scalr != 0:
        if scalr_voxels is None or teacher_maps is None:
            raise ValueError("distillation_loss: loss.scalr > 0 needs the ScaLR head's embeddings (scalr_voxels) "
                             "and the teacher's maps (teacher_maps)")
        out["scalr"] = scalr_loss(scalr_voxels, batch.pair_voxel, teacher_maps, batch.pair_pixel,
                                  (batch.images.shape[-2], batch.images.shape[-1]))
    out["total"] = out["total"] + w.ppkt * out["ppkt"] + w.scalr * out["scalr"]
    return {t: out[t] for t in TERMS}
