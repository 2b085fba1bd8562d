"""Metrics as pure functions of ``(scores, labels)`` plus DDP-safe torchmetrics wrappers.

``scores: [N, C]`` are a model's final class scores; ``labels: [N]`` true digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import auc, average_precision_score, roc_auc_score, roc_curve
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from overgen.outputs import OOD_NAMES


def thresholded_correct(scores: Tensor, labels: Tensor, threshold: float = 0.0) -> Tensor:
    """``[N] bool``: argmax right **and** its score ``>= threshold`` (docs/method.md §3,
    Table I)."""
    best, pred = scores.max(-1)
    return (pred == labels) & (best >= threshold)


class ThresholdedAccuracy(Metric):
    """Streaming fraction of ``thresholded_correct`` (``threshold = 0``: plain accuracy);
    counts are summed across DDP ranks."""

    full_state_update = False

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, scores: Tensor, labels: Tensor) -> None:
        self.correct += thresholded_correct(scores, labels, self.threshold).sum()
        self.total += labels.numel()

    def compute(self) -> Tensor:
        return self.correct.float() / self.total.clamp(min=1)


# -- open set (docs/method.md §3, Fig. 4) ---------------------------------------------------------
def openset_counts(scores: Tensor, labels: Tensor, known: Sequence[int],
                   threshold: float = 0.99) -> tuple[int, int, int]:
    """Pooled open-set counts ``(tp, fp, fn)``; ``scores: [N, C]``, ``labels: [N]``.

    A sample is accepted as ``k = argmax scores`` when ``k`` is in ``known`` and
    ``scores[k] >= threshold``, else rejected. ``tp``: accepted with its true label;
    ``fp``: accepted with a wrong label (unknown samples included); ``fn``: a known sample
    (true label in ``known``) rejected. A known sample accepted as another class is an FP
    only (docs/method.md §5), so ``tp + fn`` need not equal the number of known samples.
    """
    best, pred = scores.max(-1)
    known_t = torch.as_tensor(list(known), device=labels.device)
    accepted = torch.isin(pred, known_t) & (best >= threshold)
    correct = pred == labels
    tp = (accepted & correct).sum()
    fp = (accepted & ~correct).sum()
    fn = (~accepted & torch.isin(labels, known_t)).sum()
    return int(tp), int(fp), int(fn)


def openset_f1_perclass(scores: Tensor, labels: Tensor, known: Sequence[int],
                        threshold: float = 0.99) -> float:
    """Pooled F under the per-class convention (docs/method.md §5): a known sample accepted
    with a wrong label is an FP (for the label given) and also an FN (for its true class),
    so every known sample that is not a TP is an FN: ``R = tp / (number of known samples)``;
    ``tp``, ``fp`` as ``openset_counts``."""
    tp, fp, _ = openset_counts(scores, labels, known, threshold)
    known_count = int(torch.isin(labels, torch.as_tensor(list(known), device=labels.device)).sum())
    return openset_f1(tp, fp, known_count - tp)[2]


def oscr(scores: Tensor, labels: Tensor, known: Sequence[int]) -> tuple[np.ndarray, np.ndarray,
                                                                         float]:
    """Open-set classification rate curve (Dhamija et al. 2018) and its area; ``scores:
    [N, C]``, ``labels: [N]``, both known and unknown samples present.

    Each sample is labelled ``argmax`` over the ``known`` columns and scored by that
    column's value. As the threshold falls through every distinct score, ``ccr``: the
    share of known samples labelled right with a score ``>= threshold``, ``fpr``: the
    share of unknown samples with a score ``>= threshold``. Returns ``(fpr, ccr)`` from
    ``(0, 0)`` (nothing accepted) to ``(1, closed-set accuracy)`` and the trapezoidal area
    under it (1 for a perfect open-set classifier).
    """
    known_t = torch.as_tensor(list(known), device=scores.device)
    best, col = scores[:, known_t].max(-1)
    is_known = torch.isin(labels, known_t)
    right = (known_t[col] == labels) & is_known
    s = _numpy(best)
    order = np.argsort(-s, kind="stable")
    s = s[order]
    ccr = np.cumsum(_numpy(right)[order]) / int(is_known.sum())
    fpr = np.cumsum(_numpy(~is_known)[order]) / int((~is_known).sum())
    last = np.r_[s[1:] != s[:-1], True]  # the last sample of each tie: one point per score
    fpr, ccr = np.r_[0.0, fpr[last]], np.r_[0.0, ccr[last]]
    return fpr, ccr, float(np.trapezoid(ccr, fpr))


def openset_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """``(P, R, F)`` with ``P = tp/(tp+fp)``, ``R = tp/(tp+fn)``, ``F = 2PR/(P+R)``;
    each is 0 where its denominator is 0 (nothing accepted, no known sample)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def openness(known: int, total: int = 10) -> float:
    """``1 - sqrt(K / total)``: 0 when every class is known."""
    return 1.0 - math.sqrt(known / total)


# -- ranking metrics: OOD (known vs unknown) and ROC (1-class, Fig. 5) -------------------
def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def fpr_at_tpr(scores: Tensor, positive: Tensor, tpr: float = 0.95) -> float:
    """The smallest FPR over thresholds whose TPR is ``>= tpr``; ``scores, positive: [N]``,
    higher scores = more positive.

    Every distinct score is a threshold (``drop_intermediate=False``): the dropped collinear
    corners of the ROC curve are operating points too, and with tied (quantized) scores the
    first one that reaches ``tpr`` may be among them. TPR and FPR grow together as the
    threshold falls, so the first point whose TPR reaches ``tpr`` has the smallest FPR.
    """
    fprs, tprs, _ = roc_curve(_numpy(positive).astype(bool), _numpy(scores),
                              drop_intermediate=False)
    return float(fprs[np.searchsorted(tprs, tpr, side="left")])


def ood_metrics(scores: Tensor, in_dist: Tensor) -> dict[str, float | None]:
    """Known (in-distribution, positive) vs unknown samples ranked by ``scores: [N]``
    (e.g. the max final class score); ``in_dist: [N] bool``.

    ``auroc``; ``aupr_in``: average precision with known positive; ``aupr_out``: unknown
    positive, scores negated; ``fpr@95tpr``: FPR on unknown at 95% TPR on known.
    All ``None`` when one of the two groups is empty (e.g. all ten digits known).
    """
    if in_dist.all() or not in_dist.any():
        return dict.fromkeys(OOD_NAMES)
    s, pos = _numpy(scores), _numpy(in_dist).astype(bool)
    return dict(zip(OOD_NAMES, (  # auroc, aupr_in, aupr_out, fpr@95tpr
        float(roc_auc_score(pos, s)),
        float(average_precision_score(pos, s)),
        float(average_precision_score(~pos, -s)),
        fpr_at_tpr(scores, in_dist, 0.95),
    ), strict=True))


def roc(scores: Tensor, positive: Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve ``(fpr, tpr)`` (collinear points dropped: the same piecewise-linear curve)
    and its area; ``scores, positive: [N]``, higher scores = more positive; both groups
    must be present."""
    fpr, tpr, _ = roc_curve(_numpy(positive).astype(bool), _numpy(scores))
    return fpr, tpr, float(auc(fpr, tpr))


FPR_GRID = np.linspace(0.0, 1.0, 201)


def interp_roc(fpr: Sequence[float], tpr: Sequence[float],
               grid: Sequence[float] = FPR_GRID) -> np.ndarray:
    """TPR of one ROC curve at the FPRs in ``grid: [G]`` -> ``[G]``: the curve closed with
    (0, 0) and (1, 1), linear between points; where it jumps vertically at a grid FPR, the
    upper TPR counts."""
    fpr = np.r_[0.0, np.asarray(fpr, dtype=float), 1.0]
    tpr = np.r_[0.0, np.asarray(tpr, dtype=float), 1.0]
    order = np.lexsort((tpr, fpr))
    fpr, tpr = fpr[order], tpr[order]
    grid = np.asarray(grid, dtype=float)
    left = np.searchsorted(fpr, grid, side="right") - 1  # the top point at fpr <= g
    right = np.minimum(left + 1, len(fpr) - 1)  # the bottom point of the next fpr
    span = fpr[right] - fpr[left]
    w = np.divide(grid - fpr[left], span, out=np.zeros_like(grid), where=span > 0)
    return tpr[left] + w * (tpr[right] - tpr[left])


def average_roc(curves: Sequence[tuple[Sequence[float], Sequence[float]]],
                grid: Sequence[float] = FPR_GRID) -> np.ndarray:
    """Vertical averaging: the mean over ``curves = [(fpr, tpr), ...]`` of each curve's
    ``interp_roc`` on ``grid: [G]`` -> ``[G]``."""
    return np.mean([interp_roc(fpr, tpr, grid) for fpr, tpr in curves], axis=0)


class CatScores(Metric):
    """Gathers ``scores: [N, ...]`` and ``labels: [N]`` over batches and DDP ranks, for
    metrics that need every sample (ranking metrics); ``compute() -> (scores, labels)``.
    Ranks contribute in rank order, so only order-free metrics may use the result."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, scores: Tensor, labels: Tensor) -> None:
        self.scores.append(scores)
        self.labels.append(labels)

    def compute(self) -> tuple[Tensor, Tensor]:
        return dim_zero_cat(self.scores), dim_zero_cat(self.labels)
