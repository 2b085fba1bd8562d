"""The ablation of the choices the paper leaves open: runs grouped by setting -> tables.

A setting is the dAE's loss scale, L2 scale, unpooling, classifier input and epochs, read from
each run's composed config (``.hydra/config.yaml``, which Hydra writes beside the run's
``metrics.json``). Baseline models (no ``lambda_rec``) form one row each, by model and epochs.

``python -m overgen.report.ablation results/runs/ablation_* --out results/ablation.md``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from overgen.outputs import (
    GAMMA_FILE,
    ONECLASS_AUROC,
    ONECLASS_DIGIT,
    OOD_PREFIX,
    OPENSET_F1,
    RUN_DATA,
    RUN_EPOCHS,
    RUN_MODEL,
    TEST_ACC,
    TEST_MSE,
    threshold_key,
)
from overgen.report.collect import find_runs, known_count, missing_dirs, number, values
from overgen.report.render import to_markdown
from overgen.utils.io import atomic_write_json, atomic_write_text

OOD_AUROC = OOD_PREFIX + "auroc"
SUM, MEAN = "sum", "mean/784"
FACTORS = ("loss", "L2", "unpool", "input", "epochs")
PANEL_DIGITS = (0, 1, 8)  # the 1-class panel of results/ablation.sh; its mean decides


def setting(run: dict) -> tuple:
    """``(model, loss, L2, unpool, input, epochs)`` of a run; dAE factors are ``"-"`` for
    baselines. The loss is ``sum`` (per-sample SSE, ``lambda_rec=1``) or ``mean/784``."""
    path = Path(run["dir"]) / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(path) if path.is_file() else OmegaConf.create({})
    model = str(run.get(RUN_MODEL) or "?")
    epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=run.get(RUN_EPOCHS))
    rec = OmegaConf.select(cfg, "model.lambda_rec")
    if rec is None:
        return (model, "-", "-", "-", "-", epochs)
    loss = SUM if abs(rec - 1.0) < 1e-9 else MEAN if abs(rec * 784 - 1.0) < 1e-3 else f"{rec:g}"
    return (model, loss, f"{OmegaConf.select(cfg, 'model.lambda_l2'):g}",
            OmegaConf.select(cfg, "model.network.unpool"),
            OmegaConf.select(cfg, "model.classifier_input"), epochs)


def name(key: tuple) -> str:
    """A setting as a flat-key fragment: ``dae_oneclass,loss=sum,l2=10,...,epochs=3``."""
    model, *factors = key
    if factors[0] == "-":
        return f"{model},epochs={factors[-1]}"
    return ",".join([model, *(f"{f.lower()}={v}" for f, v in zip(FACTORS, factors, strict=True))])


def _fmt(xs: list[float], digits: int = 3) -> str:
    return f"{np.mean(xs):.{digits}f}" if xs else "–"


def _group(runs: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for run in runs:
        out.setdefault(setting(run), []).append(run)
    return dict(sorted(out.items(), key=lambda kv: tuple(map(str, kv[0]))))


def _cell(xs: list[float]) -> str:
    """Mean, with ``± std (n=k)`` over seeds when there are several runs."""
    if len(xs) < 2:
        return _fmt(xs)
    return f"{np.mean(xs):.3f} ± {np.std(xs):.3f} (n={len(xs)})"


def oneclass_rows(runs: list[dict]) -> tuple[list[str], list[list[str]], dict]:
    """Per setting: AUROC on each panel digit (mean over seeds) and the panel mean, the mean
    over all ten digits where a setting has them, test MSE, gamma > 0 share (from
    ``gamma.json`` where present); and the flat ``ablation/...`` summary values (``auroc/<d>``
    for every digit run, ``auroc_mean`` over the panel, ``auroc_mean10``)."""
    header = ["model", *FACTORS, *(f"AUROC {d}" for d in PANEL_DIGITS), "panel mean",
              "10-digit mean", "test MSE", "gamma>0"]
    rows, summary = [], {}
    for key, g in _group(runs).items():
        per_digit = {d: values([r for r in g if r.get(ONECLASS_DIGIT) == d], ONECLASS_AUROC)
                     for d in range(10)}
        panel = [float(np.mean(per_digit[d])) for d in PANEL_DIGITS if per_digit[d]]
        mean = _fmt(panel) + ("" if len(panel) == len(PANEL_DIGITS) else f" [{len(panel)}]")
        ten = [float(np.mean(x)) for x in per_digit.values() if x]
        rows.append([key[0], *map(str, key[1:]), *(_cell(per_digit[d]) for d in PANEL_DIGITS),
                     mean, _fmt(ten) if len(ten) == 10 else "–",
                     _fmt(values(g, TEST_MSE), 4), gamma_cell(g)])
        prefix = f"ablation/oneclass/{name(key)}"
        summary.update({f"{prefix}/auroc/{d}": float(np.mean(x))
                        for d, x in per_digit.items() if x})
        if len(panel) == len(PANEL_DIGITS):
            summary[f"{prefix}/auroc_mean"] = float(np.mean(panel))
        if len(ten) == 10:
            summary[f"{prefix}/auroc_mean10"] = float(np.mean(ten))
    return header, rows, summary


def openset_rows(openset: list[dict], mnist: list[dict]) -> tuple[list[str], list[list[str]], dict]:
    """Per setting: open-set F at K=3 and K=6 (mean over subsets), and the ten-digit test
    accuracies and MSE."""
    header = ["model", *FACTORS, "F K=3", "F K=6", "OOD AUROC", "acc", "acc@0.90", "acc@0.99",
              "test MSE", "gamma>0"]
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for kind, runs in (("openset", openset), ("mnist", mnist)):
        for key, g in _group(runs).items():
            groups.setdefault(key, {"openset": [], "mnist": []})[kind] = g
    rows, summary = [], {}
    for key, g in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        f = {k: values([r for r in g["openset"] if known_count(r) == k], OPENSET_F1)
             for k in (3, 6)}
        m = g["mnist"]
        cells = {"f1_k3": f[3], "f1_k6": f[6], "ood_auroc": values(g["openset"], OOD_AUROC),
                 "acc": values(m, TEST_ACC),
                 "acc@0.90": values(m, threshold_key(TEST_ACC, 0.90)),
                 "acc@0.99": values(m, threshold_key(TEST_ACC, 0.99)),
                 "mse": values(m, TEST_MSE)}
        rows.append([key[0], *map(str, key[1:]),
                     *(_fmt(v) + (f" (n={len(v)})" if k.startswith("f1") and v else "")
                       for k, v in cells.items() if k != "mse"),
                     _fmt(cells["mse"], 4), gamma_cell(g["openset"] + m)])
        prefix = f"ablation/openset/{name(key)}"
        summary.update({f"{prefix}/{k}": float(np.mean(v)) for k, v in cells.items() if v})
    return header, rows, summary


def gamma_counts(runs: list[dict]) -> tuple[int, int]:
    """``(positive, checked)``: test images with gamma > 0, of those checked, over the runs'
    ``gamma.json``."""
    checked = positive = 0
    for run in runs:
        path = Path(run["dir"]) / GAMMA_FILE
        if path.is_file():
            data = json.loads(path.read_text())
            checked += data["images"]
            positive += data["positive"]
    return positive, checked


def gamma_cell(runs: list[dict]) -> str:
    """``positive/checked`` (``gamma_counts``), ``–`` when no run was checked."""
    positive, checked = gamma_counts(runs)
    return f"{positive}/{checked}" if checked else "–"


def write(dirs: list[str], out: str) -> dict:
    """``out`` (markdown) with both tables; returns the flat summary values."""
    runs = find_runs(dirs)
    oneclass = [r for r in runs if number(r.get(ONECLASS_DIGIT)) is not None]
    openset = [r for r in runs if known_count(r) is not None]
    mnist = [r for r in runs if r.get(RUN_DATA) == "mnist" and TEST_ACC in r]
    h1, r1, s1 = oneclass_rows(oneclass)
    h2, r2, s2 = openset_rows(openset, mnist)
    trained = sorted({int(r[RUN_EPOCHS]) for r in runs if number(r.get(RUN_EPOCHS))})
    fitted = any(r.get(RUN_EPOCHS) == 0 for r in runs)  # the OC-SVM: one fit, no epochs
    blocks = [
        ("h", 1, "Ablation tables"),
        ("p", f"Generated by `python -m overgen.report.ablation` from {len(runs)} runs under "
              f"{', '.join(dirs)}; epochs completed: {', '.join(map(str, trained))}"
              f"{' (and 0: the OC-SVM is fitted, not trained)' if fitted else ''}."),
        ("h", 2, "1-class (Fig. 5 panel)"), ("table", (h1, r1)),
        ("h", 2, "Open set and ten-digit test (Fig. 4 / Table I panel)"), ("table", (h2, r2))]
    text = to_markdown(blocks, os.path.dirname(out) or ".")
    atomic_write_text(out, text)
    positive, checked = gamma_counts(runs)
    return {**s1, **s2, "ablation/gamma/positive": positive, "ablation/gamma/checked": checked}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overgen.report.ablation")
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--summary", help="also write the flat ablation/* values here (JSON)")
    args = parser.parse_args(argv)
    if missing_dirs("overgen.report.ablation", args.dirs):
        return 2
    summary = write(args.dirs, args.out)
    if args.summary:
        atomic_write_json(args.summary, summary)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
