"""Downstream segmentation loss: cross-entropy + Lovász-softmax (Berman et al., CVPR 2018), ignore label 0.

Logit layout: the classifier outputs C logits, column j scoring train id j+1 (train ids are 1..C, 0 = ignore),
so label l maps to column l-1 and points labelled 0 are skipped. A head with C+1 outputs (column 0 reserved
for "ignore") is also accepted when ``num_classes`` is given: column 0 is dropped before the softmax, so the
model can never be rewarded for predicting "ignore".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _valid_targets(labels: torch.Tensor, num_classes: int, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask of non-ignored points, their column indices l-1); rejects ids outside 1..C with a clear message."""
    labels = labels.reshape(-1).long()
    valid = labels != ignore_index
    target = labels[valid] - 1
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"labels must be train ids 1..{num_classes} or ignore {ignore_index}; found "
                         f"[{int(target.min()) + 1}, {int(target.max()) + 1}]")
    return valid, target


def lovasz_softmax(probs: torch.Tensor, labels: torch.Tensor, ignore_index: int = 0,
                   classes: str | Sequence[int] = "present") -> torch.Tensor:
    """Multi-class Lovász-softmax loss: the mean over classes of the Lovász extension of the Jaccard loss.

    ``probs`` [N, C] are class probabilities (column j = train id j+1), ``labels`` [N] train ids, 0 ignored.
    For each class c the errors e_i = |[y_i = c] - p_ic| are sorted in decreasing order and weighted by the
    increments of the Jaccard loss along that order, all classes at once (one sort over [N, C]).
    ``classes``: "present" (classes in the labels of this batch; the default), "all", or a list of train ids.
    Returns a scalar (0 with a graph when nothing is left to average).
    """
    if probs.dim() != 2:
        raise ValueError(f"probs must be [N, C], got shape {tuple(probs.shape)}")
    num_classes = probs.shape[1]
    if labels.numel() != probs.shape[0]:
        raise ValueError(f"{probs.shape[0]} probability rows but {labels.numel()} labels")
    valid, target = _valid_targets(labels, num_classes, ignore_index)
    p = probs[valid]
    if p.shape[0] == 0:
        return probs.sum() * 0.0
    fg = F.one_hot(target, num_classes).to(p.dtype)
    errors = (fg - p).abs()
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    fg_sorted = fg.gather(0, perm)
    gts = fg_sorted.sum(dim=0)
    intersection = gts - fg_sorted.cumsum(dim=0)
    union = gts + (1.0 - fg_sorted).cumsum(dim=0)
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)
    per_class = (errors_sorted * grad).sum(dim=0)
    if classes == "present":
        chosen = gts > 0
    elif classes == "all":
        chosen = torch.ones_like(gts, dtype=torch.bool)
    else:
        ids = torch.as_tensor(list(classes), dtype=torch.long, device=p.device)
        if ids.numel() and (int(ids.min()) < 1 or int(ids.max()) > num_classes):
            raise ValueError(f"classes must be train ids 1..{num_classes}, got {ids.tolist()}")
        chosen = torch.zeros_like(gts, dtype=torch.bool)
        chosen[ids - 1] = True
    if not bool(chosen.any()):
        return probs.sum() * 0.0
    return per_class[chosen].mean()


def class_logits(logits: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """The [N, C] logits of train ids 1..C: ``logits`` itself, or without column 0 if it has C+1 columns."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
    if num_classes is None or logits.shape[1] == num_classes:
        return logits
    if logits.shape[1] == num_classes + 1:
        return logits[:, 1:]
    raise ValueError(f"logits have {logits.shape[1]} columns; expected {num_classes} (train ids 1..{num_classes}) "
                     f"or {num_classes + 1} (with an ignore column 0)")


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 0,
                      lovasz_weight: float = 1.0, num_classes: int | None = None) -> torch.Tensor:
    """Cross-entropy (ignoring label ``ignore_index``) + ``lovasz_weight`` x Lovász-softmax, as in docs/METHOD.md §8.

    ``logits`` [N, C] (column j = train id j+1) or [N, C+1] with ``num_classes=C`` (column 0 dropped).
    Cross-entropy is the mean over non-ignored points; a batch with none gives 0 (with a graph), not NaN.
    """
    scores = class_logits(logits, num_classes)
    if labels.numel() != scores.shape[0]:
        raise ValueError(f"{scores.shape[0]} logit rows but {labels.numel()} labels")
    valid, target = _valid_targets(labels, scores.shape[1], ignore_index)
    if target.numel() == 0:
        return scores.sum() * 0.0
    ce = F.cross_entropy(scores[valid], target)
    if lovasz_weight == 0:
        return ce
    return ce + lovasz_weight * lovasz_softmax(F.softmax(scores, dim=1), labels, ignore_index=ignore_index)
