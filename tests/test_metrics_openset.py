"""Open-set counts / F, OOD metrics and ROC helpers: hand-counted cases, scikit-learn,
torchmetrics; and the open-set experiment end to end on tiny settings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA_DIR, TINY, compose_cfg
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from overgen.metrics import (
    average_roc,
    fpr_at_tpr,
    ood_metrics,
    openness,
    openset_counts,
    openset_f1,
    openset_f1_perclass,
    oscr,
    roc,
)
from overgen.outputs import OOD_NAMES
from overgen.tasks import train

SMALL = [*TINY, "trainer.limit_test_batches=2"]


def one_hot_scores(pred: list[int], conf: list[float], c: int = 4) -> torch.Tensor:
    scores = torch.zeros(len(pred), c)
    scores[torch.arange(len(pred)), torch.tensor(pred)] = torch.tensor(conf)
    return scores


def test_openset_counts_hand_counted():
    # known = {0, 1}; threshold 0.9
    pred = [0, 0, 1, 1, 2, 0, 1, 0]
    conf = [0.95, 0.5, 0.99, 0.9, 0.99, 0.97, 0.95, 0.2]
    labels = torch.tensor([0, 0, 0, 1, 2, 3, 1, 3])
    # 0: accepted right (TP)          1: known rejected, low score (FN)
    # 2: known accepted wrong (FP)    3: accepted right at exactly 0.9 (TP)
    # 4: argmax unknown -> rejected (FN? no: label 2 unknown -> nothing)
    # 5: unknown accepted as 0 (FP)   6: TP    7: unknown rejected (nothing)
    tp, fp, fn = openset_counts(one_hot_scores(pred, conf), labels, [0, 1], 0.9)
    assert (tp, fp, fn) == (3, 2, 1)
    p, r, f = openset_f1(tp, fp, fn)
    assert p == pytest.approx(3 / 5) and r == pytest.approx(3 / 4)
    assert f == pytest.approx(2 * p * r / (p + r))


def test_openset_f1_perclass_hand_counted():
    # the case above: sample 2 (a 0 accepted as 1) is an FP and now also an FN, so
    # tp 3, fp 2, fn 2: P = R = 3/5 (R = tp / the 5 known samples)
    pred = [0, 0, 1, 1, 2, 0, 1, 0]
    conf = [0.95, 0.5, 0.99, 0.9, 0.99, 0.97, 0.95, 0.2]
    labels = torch.tensor([0, 0, 0, 1, 2, 3, 1, 3])
    assert openset_f1_perclass(one_hot_scores(pred, conf), labels, [0, 1], 0.9) == (
        pytest.approx(0.6))


def test_oscr_hand_worked():
    # known {0, 1}: each sample labelled by the larger of columns 0, 1 (column 2 ignored)
    scores = torch.tensor([[0.9, 0.1, 0.0],   # a 0: right, 0.9
                           [0.6, 0.4, 0.0],   # a 1: wrong, 0.6
                           [0.2, 0.7, 0.1],   # unknown, 0.7
                           [0.1, 0.3, 0.6],   # a 1: right, 0.3 (argmax on unknown column 2)
                           [0.2, 0.1, 0.7]])  # unknown, 0.2
    labels = torch.tensor([0, 1, 2, 1, 2])
    fpr, ccr, area = oscr(scores, labels, [0, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 0.5, 1])
    np.testing.assert_allclose(ccr, [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert area == pytest.approx(0.5 * 1 / 3 + 0.5 * 2 / 3)


def brute_oscr(scores: np.ndarray, labels: np.ndarray, known: list[int]):
    """Every distinct score as a threshold, counted sample by sample; area by trapezoids."""
    best, label = [], []
    for row in scores:
        k = max(known, key=lambda c: row[c])
        best.append(row[k])
        label.append(k)
    is_known = np.isin(labels, known)
    samples = list(zip(best, label, labels, is_known, strict=True))
    points = [(0.0, 0.0)]
    for t in sorted(set(best), reverse=True):
        right = sum(b >= t and k == y for b, k, y, kn in samples if kn)
        opened = sum(b >= t for b, _, _, kn in samples if not kn)
        points.append((opened / (~is_known).sum(), right / is_known.sum()))
    area = sum((x1 - x0) * (y0 + y1) / 2
               for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True))
    return points, area


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oscr_against_brute_force_sweep(seed):
    """Tied scores across samples (each row a permutation of 5 levels, so no ties within)."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.stack([torch.randperm(5, generator=g) for _ in range(60)]).double() / 4
    labels = torch.randint(0, 5, (60,), generator=g)
    known = [0, 2, 3]
    fpr, ccr, area = oscr(scores, labels, known)
    points, ref_area = brute_oscr(scores.numpy(), labels.numpy(), known)
    np.testing.assert_allclose(np.c_[fpr, ccr], np.array(points))
    assert area == pytest.approx(ref_area)
    assert fpr[-1] == 1.0


def test_openset_known_argmax_on_unknown_class_is_fn():
    # a known sample whose argmax is an unknown class is rejected: FN
    scores = one_hot_scores([3], [0.999])
    assert openset_counts(scores, torch.tensor([1]), [0, 1], 0.99) == (0, 0, 1)


def test_openset_f1_zero_division():
    assert openset_f1(0, 0, 5) == (0.0, 0.0, 0.0)
    assert openset_f1(0, 3, 0) == (0.0, 0.0, 0.0)
    assert openset_f1(4, 0, 0) == (1.0, 1.0, 1.0)


def test_openness():
    assert openness(10) == 0.0
    assert openness(1) == pytest.approx(1 - math.sqrt(0.1))
    assert openness(4, total=16) == pytest.approx(0.5)


def test_ood_hand_counted():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    known = torch.tensor([True, False, True, False])
    m = ood_metrics(scores, known)
    assert m["auroc"] == pytest.approx(3 / 4)  # pairs (known > unknown): 2 + 1 of 4
    assert m["aupr_in"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["aupr_out"] == pytest.approx((1 + 2 / 3) / 2)  # by symmetry
    assert m["fpr@95tpr"] == pytest.approx(0.5)  # 100% TPR needs threshold 0.7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ood_against_sklearn_and_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    known = torch.rand(500, generator=g) < 0.6
    scores = (torch.rand(500, generator=g) + 0.5 * known).div(1.5)  # in [0, 1]
    scores[:20] = scores[20:40]  # ties
    m = ood_metrics(scores, known)
    s, k = scores.double().numpy(), known.numpy()
    assert m["auroc"] == pytest.approx(roc_auc_score(k, s))
    assert m["aupr_in"] == pytest.approx(average_precision_score(k, s))
    assert m["aupr_out"] == pytest.approx(average_precision_score(~k, -s))
    assert m["auroc"] == pytest.approx(binary_auroc(scores, known.long()).item(), abs=1e-6)
    assert m["aupr_in"] == pytest.approx(
        binary_average_precision(scores, known.long()).item(), abs=1e-6)
    assert m["aupr_out"] == pytest.approx(
        binary_average_precision(1 - scores, (~known).long()).item(), abs=1e-6)
    # fpr@95tpr: the smallest FPR of any threshold with TPR >= 0.95, by brute force
    ths = np.unique(s)
    best = min((s[~k] >= t).mean() for t in ths if (s[k] >= t).mean() >= 0.95)
    assert m["fpr@95tpr"] == pytest.approx(best)
    assert fpr_at_tpr(scores, known, 0.95) == m["fpr@95tpr"]


def brute_fpr_at_tpr(scores: torch.Tensor, positive: torch.Tensor, tpr: float) -> float:
    """The smallest FPR over every distinct score as threshold (accept ``>= t``) whose TPR
    reaches ``tpr``."""
    s, pos = scores.double().numpy(), positive.numpy()
    return min((s[~pos] >= t).mean() for t in np.unique(s) if (s[pos] >= t).mean() >= tpr)


def test_fpr_at_tpr_quantized_scores_hand_worked():
    # scores 20, 20, 19, 19, ..., 1, 1; each pair one known, one unknown: threshold 2
    # accepts 19 of the 20 known (TPR 0.95) and 19 of the 20 unknown (FPR 0.95). The ROC
    # curve is the diagonal, whose collinear corners drop_intermediate would drop.
    scores = torch.arange(20, 0, -1).repeat_interleave(2)
    known = torch.arange(40) % 2 == 0
    assert fpr_at_tpr(scores, known, 0.95) == pytest.approx(0.95)
    assert brute_fpr_at_tpr(scores, known, 0.95) == pytest.approx(0.95)
    assert ood_metrics(scores.float(), known)["fpr@95tpr"] == pytest.approx(0.95)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [3, 8, 40])
def test_fpr_at_tpr_tied_scores_against_brute_force(seed, levels):
    g = torch.Generator().manual_seed(seed)
    known = torch.rand(300, generator=g) < 0.5
    known[:2] = torch.tensor([True, False])  # both groups present
    # few distinct values, known a little higher: many ties inside and across the groups
    scores = (torch.rand(300, generator=g) * levels + known * levels / 4).floor() / levels
    for tpr in (0.5, 0.9, 0.95, 1.0):
        assert fpr_at_tpr(scores, known, tpr) == pytest.approx(
            brute_fpr_at_tpr(scores, known, tpr)), tpr


@pytest.mark.parametrize("seed", range(6))
def test_fpr_at_tpr_on_collinear_corners_against_brute_force(seed):
    # runs of score levels, each level of a run holding the same numbers of known and
    # unknown samples: equal ROC steps, the corners roc_curve's drop_intermediate drops
    g = torch.Generator().manual_seed(seed)
    known, unknown, level = [], [], 0
    for _ in range(4):
        length, k, u = torch.randint(2, 8, (3,), generator=g).tolist()
        for _ in range(length):
            known += [level] * k
            unknown += [level] * u
            level -= 1
    scores = torch.tensor(known + unknown, dtype=torch.float64)
    positive = torch.arange(len(scores)) < len(known)
    for tpr in (0.3, 0.5, 0.9, 0.95):
        assert fpr_at_tpr(scores, positive, tpr) == pytest.approx(
            brute_fpr_at_tpr(scores, positive, tpr)), tpr


@pytest.mark.parametrize("in_dist", [[True] * 3, [False] * 3])
def test_ood_none_when_one_group_is_empty(in_dist):
    m = ood_metrics(torch.rand(3), torch.tensor(in_dist))
    assert set(m) == set(OOD_NAMES) and all(v is None for v in m.values())


def test_roc_matches_sklearn():
    g = torch.Generator().manual_seed(3)
    positive = torch.rand(300, generator=g) < 0.1
    scores = torch.randn(300, generator=g) + 2 * positive  # not in [0, 1]: no sigmoid
    fpr, tpr, area = roc(scores, positive)
    ref_fpr, ref_tpr, _ = roc_curve(positive.numpy(), scores.double().numpy())
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert area == pytest.approx(roc_auc_score(positive.numpy(), scores.double().numpy()))


def test_average_roc():
    a = ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    b = ([0.0, 1.0], [0.0, 1.0])
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(average_roc([a], grid), [0.5, 0.5, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(average_roc([a, b], grid),
                               [0.25, 0.375, 0.75, 0.875, 1.0])
    # unsorted points and a curve not closed at (0, 0) / (1, 1) give the same curve
    c = ([0.5, 0.0, 0.5, 0.0], [1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(average_roc([c], grid), [0.5, 0.5, 1.0, 1.0, 1.0])
    # on a fine grid, the averaged curve's area is the mean of the areas
    g = torch.Generator().manual_seed(4)
    curves, areas = [], []
    for _ in range(5):
        pos = torch.rand(200, generator=g) < 0.3
        fpr, tpr, area = roc(torch.rand(200, generator=g) + pos, pos)
        curves.append((fpr, tpr))
        areas.append(area)
    grid = np.linspace(0, 1, 20001)
    assert np.trapezoid(average_roc(curves, grid), grid) == pytest.approx(np.mean(areas),
                                                                          abs=1e-3)


def mnist_test_labels(n: int) -> list[int]:
    """The first ``n`` MNIST test labels, read from the raw idx file (8-byte header)."""
    path = Path(DATA_DIR) / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    return list(path.read_bytes()[8 : 8 + n])


@pytest.mark.e2e
def test_openset_experiment_end_to_end(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["experiment=openset", "model=cnn", "+known=2",
                                "data.subset=1", "trainer.max_steps=2", *SMALL], tmp_path)
    returned = train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["openset/known"] == 2 and len(m["openset/known_classes"]) == 2
    assert m["openset/known_classes"] == m["run/train_classes"]
    assert m["openset/openness"] == pytest.approx(1 - math.sqrt(0.2))
    assert m["openset/threshold"] == 0.99
    tp, fp, fn = m["openset/tp"], m["openset/fp"], m["openset/fn"]
    assert m["openset/f1"] == pytest.approx(openset_f1(tp, fp, fn)[2])
    for key in OOD_NAMES:
        assert 0.0 <= m[f"ood/{key}"] <= 1.0
        # the CNN's final score is its softmax: MSP ranks as the final score does
        assert m[f"ood/msp/{key}"] == pytest.approx(m[f"ood/{key}"])
        for score in ("max_logit", "energy", "mahalanobis"):
            assert 0.0 <= m[f"ood/{score}/{key}"] <= 1.0
    assert "ood/reconstruction/auroc" not in m  # no dAE term
    assert returned["openset/f1"] == m["openset/f1"]
    # per-class convention: every known test image that is not a TP is an FN
    known = sum(label in m["openset/known_classes"] for label in mnist_test_labels(1000))
    assert m["openset/f1_perclass"] == pytest.approx(openset_f1(tp, fp, known - tp)[2])
    assert 0.0 <= m["openset/oscr"] <= 1.0


@pytest.mark.e2e
def test_openset_all_known_has_no_ood(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["experiment=openset", "model=cnn", "+known=10",
                                "trainer.max_steps=1", *SMALL], tmp_path)
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["openset/known"] == 10 and m["openset/openness"] == 0.0
    assert all(m[f"ood/{key}"] is None for key in OOD_NAMES)
    assert all(m[f"ood/msp/{key}"] is None for key in OOD_NAMES)
    assert m["openset/oscr"] is None
