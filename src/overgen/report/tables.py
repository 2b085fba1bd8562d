"""Report tables as ``(header, rows)`` of strings, beside the paper's numbers (docs/method.md §3).

A cell built from fewer runs than its row says so: ``98.50 [n=1]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from overgen.outputs import (
    FOOLING_RATE,
    FOOLING_STEPS,
    ONECLASS_AUROC,
    ONECLASS_DIGIT,
    ONECLASS_PREFIX,
    OOD_KEYS,
    OOD_NAMES,
    OOD_PREFIX,
    OPENSET_F1,
    OPENSET_F1_PERCLASS,
    OPENSET_OSCR,
    POSTHOC_SCORES,
    RUN_ALPHA,
    RUN_DATA,
    RUN_MODEL,
    TEST_ACC,
    posthoc_key,
    threshold_key,
)
from overgen.report.collect import group, listed, provenance, values

Table = tuple[list[str], list[list[str]]]

# The paper's reference values (Spigler, Table I, as printed; docs/method.md §3), not ours:
# acc, acc@90%, acc@99% in %, fooled@90% (steps), fooled@99% (steps); 100 epochs per model.
PAPER_TABLE_I = {
    "cnn": ("CNN", "99.35", "99.23", "~99", "100% (63.5)", "99% (187.1)"),
    "cool": ("COOL", "99.33", "98.1", "93.54", "34.5% (238.8)", "4.5% (313.4)"),
    "dae_sym": ("dAE sym", "98.98", "98.11", "96.8", "0%", "0%"),
    "dae_asym": ("dAE asym", "99.14", "98.41", "-", "0%", "-"),
}
PAPER_EPOCHS = 100
# The paper's Fig. 5 AUCs (1-class, averaged over the ten digits), not ours.
PAPER_AUC = {"dae": 0.964, "ocsvm": 0.952, "cool": 0.753}
# 1-class models beyond the paper, with the mean MNIST AUC of their own paper, not ours:
# Deep SVDD, Ruff et al. (ICML 2018), Table 1, one-class Deep SVDD over the ten digits.
OTHER_PAPER_AUC = {"deep_svdd": (0.948, "Ruff et al. 2018")}
THRESHOLDS = ("0.90", "0.99")


def cell(xs: list[float], fmt: Callable[[float], str], n: int, std: bool = False) -> str:
    """``fmt`` of the mean of ``xs`` (``± std``, ddof 0); ``–`` when empty; ``[n=k]`` when
    there are ``k != n`` values."""
    if not xs:
        return "–"
    text = fmt(float(np.mean(xs))) + (f" ± {fmt(float(np.std(xs)))}" if std else "")
    return text if len(xs) == n else f"{text} [n={len(xs)}]"


def _fooled(runs: list[dict], t: str) -> str:
    rate = cell(values(runs, threshold_key(FOOLING_RATE, float(t))),
                lambda v: f"{100 * v:.1f}%", len(runs))
    steps = values(runs, threshold_key(FOOLING_STEPS, float(t)))
    return f"{rate} ({cell(steps, lambda v: f'{v:.1f}', len(runs))})" if steps else rate


def _model(run: dict) -> str:
    return str(run.get(RUN_MODEL) or "?")


def table_one(runs: list[dict]) -> Table:
    """Table I: per setting, mean accuracies (%) and fooling rates (mean updates), each
    model's rows followed by the paper's row."""
    header = ["model", "source", "acc", "acc@90%", "acc@99%", "fooled@90% (steps)",
              "fooled@99% (steps)", "from"]
    rows = []
    for model, model_runs in group(runs, _model).items():
        for name, g in group(model_runs).items():
            accs = [cell(values(g, key), lambda v: f"{100 * v:.2f}", len(g))
                    for key in (TEST_ACC, *(threshold_key(TEST_ACC, float(t)) for t in THRESHOLDS))]
            rows.append([name, "ours", *accs, *(_fooled(g, t) for t in THRESHOLDS),
                         provenance(g)])
        if model in PAPER_TABLE_I:
            name, *cells = PAPER_TABLE_I[model]
            rows.append([name, "paper", *cells, f"epochs={PAPER_EPOCHS}"])
    return header, rows


def fooling_settings(runs: list[dict]) -> str:
    """The attack settings behind the fooling columns, e.g. ``200 trials, <= 10000 updates``."""
    return (f"{listed(runs, 'fooling/trials')} trials per run, at most "
            f"{listed(runs, 'fooling/max_steps')} updates")


def alpha_settings(runs: list[dict], thresholds: list[str]) -> str:
    """The alpha each setting paired with each threshold (``run/alpha@t``), e.g.
    ``dae_sym (exact curvature): alpha 20 at 0.90, 3 at 0.99``; ``""`` when no run has one."""
    parts = []
    for name, g in group(runs).items():
        pairs = [f"{listed(g, threshold_key(RUN_ALPHA, float(t)))} at {t}" for t in thresholds
                 if values(g, threshold_key(RUN_ALPHA, float(t)))]
        if pairs:
            parts.append(f"{name}: alpha {', '.join(pairs)}")
    return "; ".join(parts)


def openset_table(points: dict[str, list[dict]], runs: list[dict]) -> Table:
    """Fig. 4 as numbers: F mean ± std (n subsets) per K and setting."""
    groups = group(runs)
    labels = list(points)
    header = ["K", "openness", *(f"{name} ({provenance(groups[name])})" for name in labels)]
    by_k: dict[int, dict[str, dict]] = {}
    for name in labels:
        for p in points[name]:
            by_k.setdefault(p["known"], {})[name] = p
    rows = []
    for k, cells in sorted(by_k.items()):
        openness = np.mean([p["openness"] for p in cells.values()])
        rows.append([str(k), f"{openness:.3f}", *(
            f"{cells[n]['mean']:.3f} ± {cells[n]['std']:.3f} (n={cells[n]['n']})"
            if n in cells else "–" for n in labels)])
    return header, rows


# headers of ood_metrics' values: aupr_in / aupr_out are average precision, not a trapezoidal
# AUPR (docs/method.md §5)
OOD_HEADERS = {"auroc": "AUROC", "aupr_in": "AP in", "aupr_out": "AP out",
               "fpr@95tpr": "FPR@95TPR"}
FINAL_SCORE = "final"


def _posthoc_found(runs: list[dict], prefix: str, name: str) -> list[str]:
    """The post-hoc scores with a number under ``posthoc_key(prefix, score, name)`` in some
    run."""
    return [s for s in POSTHOC_SCORES if values(runs, posthoc_key(prefix, s, name))]


def ood_table(runs: list[dict]) -> Table:
    """Known vs unknown test samples per setting and score (the max final score, then each
    post-hoc score), mean over the open-set runs."""
    header = ["model", "score", *(OOD_HEADERS[n] for n in OOD_NAMES), "from"]
    rows = []
    for name, g in group(runs).items():
        for score in (FINAL_SCORE, *_posthoc_found(g, OOD_PREFIX, "auroc")):
            keys = (OOD_KEYS if score == FINAL_SCORE
                    else [posthoc_key(OOD_PREFIX, score, n) for n in OOD_NAMES])
            rows.append([name, score, *(cell(values(g, k), lambda v: f"{v:.3f}", len(g))
                                        for k in keys), provenance(g)])
    return header, rows


def openset_conventions_table(runs: list[dict]) -> Table:
    """Per setting, mean over the open-set runs: F pooled as the paper's figure, F with a
    misassigned known sample also an FN, and the OSCR area."""
    header = ["model", "F (pooled)", "F (per-class FN)", "OSCR area", "from"]
    rows = [[name, *(cell(values(g, k), lambda v: f"{v:.3f}", len(g))
                     for k in (OPENSET_F1, OPENSET_F1_PERCLASS, OPENSET_OSCR)), provenance(g)]
            for name, g in group(runs).items()]
    return header, rows


def paper_auc(name: str) -> str:
    """The published AUC of the setting's model (its first word): the paper's, else that
    of the model's own paper; ``–`` without one."""
    model = name.split(" ")[0]
    auc = PAPER_AUC.get("dae" if model.startswith("dae") else model)
    if auc is None and model in OTHER_PAPER_AUC:
        auc = OTHER_PAPER_AUC[model][0]
    return "–" if auc is None else f"{auc:.3f}"


def paper_aucs(sep: str = "; ") -> str:
    """Every published 1-class AUC: the paper's, then, each after ``sep``, the other
    models' with their source."""
    ours = ", ".join(f"{k} {v:.3f}" for k, v in PAPER_AUC.items())
    return sep.join([ours, *(f"{k} {v:.3f} ({source})"
                             for k, (v, source) in OTHER_PAPER_AUC.items())])


def oneclass_table(summary: dict[str, dict]) -> Table:
    """Fig. 5 as numbers: mean AUC over the runs (one digit each) beside the paper's AUC."""
    header = ["model", "mean AUC ± std", "paper AUC", "digits", "ROC curves", "from"]
    rows = []
    for name, s in summary.items():
        auc = cell(s["auc"], lambda v: f"{v:.3f}", len(s["runs"]), std=True)
        rows.append([name, auc, paper_auc(name), ",".join(map(str, s["digits"])) or "?",
                     str(s["curves"]), provenance(s["runs"])])
    return header, rows


def oneclass_digit_table(runs: list[dict]) -> Table:
    """AUC per digit (rows) and setting (columns), mean over that digit's runs."""
    groups = group(runs)
    digits = sorted({int(d) for d in values(runs, ONECLASS_DIGIT)})
    rows = []
    for d in digits:
        row = [str(d)]
        for g in groups.values():
            xs = values([r for r in g if r.get(ONECLASS_DIGIT) == d], ONECLASS_AUROC)
            row.append(cell(xs, lambda v: f"{v:.3f}", 1))
        rows.append(row)
    return ["digit", *groups], rows


def oneclass_score_table(runs: list[dict]) -> Table:
    """Mean 1-class AUC ± std per setting and score (the final score, then each post-hoc
    score)."""
    rows = []
    for name, g in group(runs).items():
        keys = {FINAL_SCORE: ONECLASS_AUROC, **{
            s: posthoc_key(ONECLASS_PREFIX, s, "auroc")
            for s in _posthoc_found(g, ONECLASS_PREFIX, "auroc")}}
        for score, key in keys.items():
            rows.append([name, score, cell(values(g, key), lambda v: f"{v:.3f}", len(g),
                                           std=True), provenance(g)])
    return ["model", "score", "mean AUC ± std", "from"], rows


def overview_table(runs: list[dict]) -> Table:
    """Every run found, counted per data set and setting."""
    by_data = group(runs, lambda r: str(r.get(RUN_DATA) or "?"))
    rows = [[data, name, provenance(g)] for data, d_runs in sorted(by_data.items())
            for name, g in group(d_runs).items()]
    return ["data", "model", "runs"], rows

