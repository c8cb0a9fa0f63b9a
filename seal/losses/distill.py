"""Seal pretraining losses (docs/METHOD.md §6): L_vfm, L_tmp, L_p2s and their weighted sum.

Everything is vectorised (``index_add`` / ``bincount`` / ``torch.unique``), never a Python loop over segments.
Conventions shared by all losses:

- segment / superpixel ids are integers, ``< 0`` means "none" and is dropped; ids may be sparse (offset per
  image or sample) - they are compacted with ``torch.unique`` so large ids cost no memory;
- pooled features are plain means of L2-normalised features and are *not* re-normalised by default (as in
  SLidR: the logits are inner products of means); ``normalize_pooled=True`` re-normalises them;
- means are not detached: gradients reach both sides (for L_vfm the 2D side is the trainable head H_i, the
  frozen backbone sits upstream of ``pixel_features``);
- logits are computed in float32 whatever the input dtype, so the losses are safe under AMP / bfloat16;
- degenerate inputs never give NaN: no valid segment -> a float32 zero still attached to the autograd graph,
  a single segment -> 0 (log-softmax over one element);
- index ranges are not checked here: reading a device tensor back to check it would stall every step on a host
  sync. A `PairBatch` comes from `collate_pairs`, which checks every index on the CPU (`PairBatch.check`), so the
  losses trust it; a caller with its own indices checks them with `seal.core.batch.check_index`. Shapes, which
  cost nothing to check, still are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seal.core.batch import PairBatch
from seal.core.config import LossConfig

__all__ = [
    "info_nce",
    "point_to_segment_loss",
    "seal_loss",
    "segment_mean",
    "temporal_loss",
    "vfm_loss",
]


def _check_pair(features: Tensor, ids: Tensor, what: str) -> None:
    """Raise ValueError unless ``features`` is [N, D] and ``ids`` is [N]."""
    if features.dim() != 2:
        raise ValueError(f"{what}: features must be 2-D [N, D], got shape {tuple(features.shape)}")
    if ids.dim() != 1:
        raise ValueError(f"{what}: ids must be 1-D [N], got shape {tuple(ids.shape)}")
    if features.shape[0] != ids.shape[0]:
        raise ValueError(f"{what}: {features.shape[0]} feature rows but {ids.shape[0]} ids (lengths must match)")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{what}: ids must be an integer tensor, got {ids.dtype}")


def _zero(*tensors: Tensor) -> Tensor:
    """A float32 zero connected to every input (so ``backward`` works and DDP sees all parameters used)."""
    out = torch.zeros((), dtype=torch.float32, device=tensors[0].device)
    for t in tensors:
        out = out + (t.float() * 0).sum()  # 0 * x, not 0 * sum(x): a half-precision sum could overflow to inf
    return out


def segment_mean(features: Tensor, ids: Tensor, num_segments: int | None = None) -> tuple[Tensor, Tensor]:
    """Mean feature per segment id.

    ``features`` [N, D], ``ids`` [N] (``ids < 0`` ignored). Returns ``(means [S, D] float32, counts [S] long)``
    with S = ``num_segments`` or ``ids.max() + 1``; empty segments get a zero mean and count 0. Sums are taken
    in float32 so half-precision inputs neither overflow nor lose precision. Given ``num_segments``, ids must be
    below it (not checked here, see the module docstring; the losses pass the count of their compacted ids).
    """
    _check_pair(features, ids, "segment_mean")
    valid = ids >= 0
    ids_v = ids[valid].long()
    if num_segments is None:
        num_segments = int(ids_v.max().item()) + 1 if ids_v.numel() else 0
    feats = features[valid].float()
    sums = feats.new_zeros((num_segments, features.shape[1])).index_add(0, ids_v, feats)
    counts = torch.bincount(ids_v, minlength=num_segments)
    means = sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)
    return means, counts


def info_nce(queries: Tensor, keys: Tensor, tau: float) -> Tensor:
    """InfoNCE: ``-mean_i log softmax_j(<q_i, k_j> / tau)[i]``; key i is row i's positive, all others negatives.

    Computed in float32. With zero rows it returns an attached zero; with one row it is exactly 0.
    """
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape != keys.shape:
        raise ValueError(
            f"info_nce: queries and keys must both be [M, D] with equal shapes, got "
            f"{tuple(queries.shape)} and {tuple(keys.shape)}"
        )
    if tau <= 0:
        raise ValueError(f"info_nce: tau must be > 0, got {tau}")
    if queries.shape[0] == 0:
        return _zero(queries, keys)
    logits = queries.float() @ keys.float().t() / tau
    target = torch.arange(queries.shape[0], device=queries.device)
    return F.cross_entropy(logits, target)


def _maybe_normalize(x: Tensor, normalize: bool) -> Tensor:
    return F.normalize(x, dim=1) if normalize else x


def vfm_loss(
    point_features: Tensor,
    pairing_point: Tensor,
    pairing_superpixel: Tensor,
    pixel_features: Tensor,
    pixel_superpixel: Tensor,
    tau: float = 0.07,
    *,
    normalize_pooled: bool = False,
) -> Tensor:
    """L_vfm, the spatial camera-to-LiDAR superpixel-to-superpoint contrastive loss (SLidR-style).

    ``point_features`` [N, D]: L2-normalised 3D features (voxels or points). ``pairing_point`` [P]: index into
    ``point_features`` of each point-pixel pairing; ``pairing_superpixel`` [P]: global superpixel id of the
    pixel that pairing lands in (< 0 dropped). ``pixel_features`` [Q, D]: L2-normalised 2D features of all
    pixels of all images of the batch, flattened; ``pixel_superpixel`` [Q]: their global superpixel ids
    (< 0 dropped). ``pairing_point`` must index rows of ``point_features`` (not checked: see the module docstring).

    For each superpixel i with at least one pairing (and at least one pixel): k_i = mean of the 3D features of
    its pairings (one term per pairing, so a point paired twice counts twice), q_i = mean 2D feature of all its
    pixels; L = InfoNCE with k as queries and q as keys, the negatives being all other such superpixels of the
    batch (superpixels without points are not negatives, as in SLidR). Means are not re-normalised unless
    ``normalize_pooled``.
    """
    _check_pair(pixel_features, pixel_superpixel, "vfm_loss (pixel_features / pixel_superpixel)")
    if point_features.dim() != 2:
        raise ValueError(f"vfm_loss: point_features must be [N, D], got shape {tuple(point_features.shape)}")
    if pairing_point.dim() != 1 or pairing_point.shape != pairing_superpixel.shape:
        raise ValueError(
            f"vfm_loss: pairing_point and pairing_superpixel must be 1-D of equal length, got "
            f"{tuple(pairing_point.shape)} and {tuple(pairing_superpixel.shape)}"
        )
    if point_features.shape[1] != pixel_features.shape[1]:
        raise ValueError(
            f"vfm_loss: 3D features have {point_features.shape[1]} channels but 2D features "
            f"{pixel_features.shape[1]} (they must match)"
        )

    pair_ok = pairing_superpixel >= 0  # no valid pairing or pixel: `_pooled_nce` gives an attached zero
    return _pooled_nce(point_features[pairing_point[pair_ok].long()], pairing_superpixel[pair_ok], pixel_features,
                       pixel_superpixel, tau, normalize_pooled)


def _pooled_nce(queries: Tensor, query_ids: Tensor, keys: Tensor, key_ids: Tensor, tau: float,
                normalize_pooled: bool) -> Tensor:
    """InfoNCE between per-id means of two sides, over the ids both sides have (ids < 0 ignored).

    Ids (possibly sparse, offset per image or sample) are compacted to 0..S-1 jointly for both sides.
    """
    ok_q, ok_k = query_ids >= 0, key_ids >= 0
    ids_q, ids_k = query_ids[ok_q].long(), key_ids[ok_k].long()
    if ids_q.numel() == 0 or ids_k.numel() == 0:
        return _zero(queries, keys)
    uniq, inverse = torch.unique(torch.cat([ids_q, ids_k]), return_inverse=True)
    num = uniq.numel()
    q, q_count = segment_mean(queries[ok_q], inverse[: ids_q.numel()], num)
    k, k_count = segment_mean(keys[ok_k], inverse[ids_q.numel():], num)
    keep = (q_count > 0) & (k_count > 0)
    return info_nce(_maybe_normalize(q[keep], normalize_pooled), _maybe_normalize(k[keep], normalize_pooled), tau)


def temporal_loss(
    features_t: Tensor,
    segments_t: Tensor,
    features_n: Tensor,
    segments_n: Tensor,
    tau: float = 0.07,
    *,
    normalize_pooled: bool = False,
) -> Tensor:
    """L_tmp, the temporal superpoint consistency loss between frames t and t+n.

    ``features_*`` [N_*, D] L2-normalised 3D features, ``segments_*`` [N_*] superpoint ids shared across the two
    frames by the joint clustering (global ids, already offset per sample; < 0 = ground/noise, ignored). For
    each segment present in both frames, f_s^t / f_s^{t+n} are the mean features of its points in each frame;
    InfoNCE with f^t as queries and f^{t+n} as keys, the other common segments being the negatives. Means are not
    re-normalised unless ``normalize_pooled``.
    """
    _check_pair(features_t, segments_t, "temporal_loss (frame t)")
    _check_pair(features_n, segments_n, "temporal_loss (frame t+n)")
    if features_t.shape[1] != features_n.shape[1]:
        raise ValueError(
            f"temporal_loss: frame t has {features_t.shape[1]} channels, frame t+n {features_n.shape[1]}"
        )
    return _pooled_nce(features_t, segments_t, features_n, segments_n, tau, normalize_pooled)


def point_to_segment_loss(
    features: Tensor,
    segments: Tensor,
    tau: float = 0.07,
    max_points: int | None = 8192,
    generator: torch.Generator | None = None,
    *,
    normalize_pooled: bool = False,
) -> Tensor:
    """L_p2s, point-to-segment regularisation: each point is pulled to its own segment mean, pushed from others.

    Cross-entropy over logits <f_p, mu_s>/tau (s over all segments present) with target = own segment. Means
    come from all valid points (ids >= 0); the loss is averaged over at most ``max_points`` of them, drawn
    uniformly without replacement (reproducible with ``generator``), which bounds the P x S logits memory.
    With ``max_points`` None or >= the number of valid points every valid point is used (no sampling).
    Means are not detached (gradients reach them) and are not re-normalised unless ``normalize_pooled``.
    """
    _check_pair(features, segments, "point_to_segment_loss")
    if max_points is not None and max_points <= 0:
        raise ValueError(f"point_to_segment_loss: max_points must be positive or None, got {max_points}")
    ok = segments >= 0
    ids = segments[ok].long()
    if ids.numel() == 0:
        return _zero(features)
    feats = features[ok]
    uniq, target = torch.unique(ids, return_inverse=True)
    means, _ = segment_mean(feats, target, uniq.numel())
    means = _maybe_normalize(means, normalize_pooled)
    if max_points is not None and ids.numel() > max_points:
        gen_device = generator.device if generator is not None else features.device
        pick = torch.randperm(ids.numel(), generator=generator, device=gen_device)[:max_points].to(features.device)
        feats, target = feats[pick], target[pick]
    logits = feats.float() @ means.t() / tau
    return F.cross_entropy(logits, target)


def seal_loss(voxels: Tensor, pixel_features: Tensor, batch: PairBatch, weights: LossConfig | None = None,
              generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Total Seal loss of one batch; returns ``{"total", "vfm", "tmp", "p2s"}`` (float32 scalars).

    ``voxels`` [M, D] are the student's voxel embeddings for ``batch.coords``, ``pixel_features`` [I*H*W, D] the
    2D head's pixel embeddings in the order of ``batch.pixel_superpixel``. L_p2s is applied to the points of both
    frames together, since their superpoint ids are shared. A term with weight 0 is a zero (still attached to
    the graph, so DDP sees every parameter used) and is not computed.
    """
    w = weights if weights is not None else LossConfig()
    zero = _zero(voxels, pixel_features)
    vfm = tmp = p2s = zero
    if w.vfm != 0:
        vfm = vfm_loss(voxels, batch.pair_voxel, batch.pair_superpixel, pixel_features, batch.pixel_superpixel,
                       w.tau, normalize_pooled=w.normalize_pooled)
    features_t, features_n = voxels[batch.point_voxel_t], voxels[batch.point_voxel_n]
    if w.tmp != 0:
        tmp = temporal_loss(features_t, batch.segments_t, features_n, batch.segments_n, w.tau,
                            normalize_pooled=w.normalize_pooled)
    if w.p2s != 0:
        p2s = point_to_segment_loss(torch.cat([features_t, features_n]),
                                    torch.cat([batch.segments_t, batch.segments_n]), w.tau, w.p2s_max_points,
                                    generator, normalize_pooled=w.normalize_pooled)
    total = w.vfm * vfm + w.tmp * tmp + w.p2s * p2s
    return {"total": total, "vfm": vfm, "tmp": tmp, "p2s": p2s}
