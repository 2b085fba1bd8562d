"""The reproduction's numbers as one flat JSON (``results/summary.json``), each with its epochs.

Keys: ``table1/<model>/<metric>``,
``fig4/<model>/k<K>/f_mean|f_std|n|precision_mean|recall_mean``, ``fig5/<model>/auroc_mean``,
``fig5/<model>/auroc/<digit>``, ``fig5/<model>/<score>/auroc_mean`` (the post-hoc scores of
the same runs, ``models.posthoc``), ``fig2/<metric>`` (with the ``rings_check.json`` values,
``fig2/c_*``), ``table1/<model>/fooling_images/...`` and ``table1/<model>/test_images/...``
(a dAE's ``fooling_check.json``), every group also with ``.../epochs`` (the distinct epoch
counts of its runs, ``"3"`` or ``"3/10"``), and the ``ablation/...`` values of
``python -m overgen.report.ablation --summary``.

``python -m overgen.report.summary <run dirs> [--ablation ablation.json] --out summary.json``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from overgen.outputs import (
    FOOLING_CHECK_FILE,
    FOOLING_PREFIX,
    FOOLING_RATE,
    FOOLING_STEPS,
    ONECLASS_AUROC,
    ONECLASS_DIGIT,
    ONECLASS_PREFIX,
    OPENSET_F1,
    OPENSET_PRECISION,
    OPENSET_RECALL,
    POSTHOC_SCORES,
    RINGS_CHECK_FILE,
    RINGS_FIGURE,
    RUN_ALPHA,
    RUN_EPOCHS,
    RUN_MODEL,
    RUN_STEPS,
    TEST_ACC,
    TEST_MSE,
    posthoc_key,
    threshold_key,
)
from overgen.report.collect import find_runs, group, has_prefix, known_count, missing_dirs, values
from overgen.utils.io import atomic_write_json

TABLE1_KEYS = {"acc": TEST_ACC,
               **{f"acc@{t:.2f}": threshold_key(TEST_ACC, t) for t in (0.90, 0.99)},
               "mse": TEST_MSE,
               **{f"fooled@{t:.2f}": threshold_key(FOOLING_RATE, t) for t in (0.90, 0.99)},
               **{f"steps@{t:.2f}": threshold_key(FOOLING_STEPS, t) for t in (0.90, 0.99)},
               **{f"alpha@{t:.2f}": threshold_key(RUN_ALPHA, t) for t in (0.90, 0.99)}}


def epochs(runs: list[dict]) -> str:
    """The distinct ``run/epochs`` of ``runs``, ``"/"``-joined (``"?"`` when unknown)."""
    found = sorted({int(e) for e in values(runs, RUN_EPOCHS)})
    return "/".join(map(str, found)) or "?"


def _model(run: dict) -> str:
    name = str(run.get(RUN_MODEL) or "?")
    lr = run.get("fooling/lr")
    return f"{name}@lr{lr:g}" if isinstance(lr, int | float) and lr != 1e-5 else name


def _mean(runs: list[dict], key: str) -> float | None:
    xs = values(runs, key)
    return float(np.mean(xs)) if xs else None


def _per_digit(runs: list[dict], key: str) -> dict[int, float]:
    """``{digit: mean of key over that digit's runs}`` for the digits that have ``key``."""
    means = {int(d): _mean([r for r in runs if r.get(ONECLASS_DIGIT) == d], key)
             for d in values(runs, ONECLASS_DIGIT)}
    return {d: v for d, v in means.items() if v is not None}


def summarize(runs: list[dict]) -> dict:
    """The flat ``table1/``, ``fig4/``, ``fig5/`` and ``fig2/`` values of ``runs``."""
    out: dict = {}
    fooling = [r for r in runs if has_prefix(r, FOOLING_PREFIX)]
    for model, g in group(fooling, _model).items():
        for name, key in TABLE1_KEYS.items():
            if (v := _mean(g, key)) is not None:
                out[f"table1/{model}/{name}"] = v
        out[f"table1/{model}/epochs"] = epochs(g)
        checked = newest_json(g, FOOLING_CHECK_FILE)  # a dAE's view of its fooling images
        out.update({f"table1/{model}/{k}": v for k, v in checked.items()})
    openset = [r for r in runs if known_count(r) is not None and OPENSET_F1 in r]
    for model, g in group(openset, lambda r: str(r.get(RUN_MODEL))).items():
        for k, kruns in sorted(group(g, known_count).items()):
            f1 = values(kruns, OPENSET_F1)
            prefix = f"fig4/{model}/k{k}"
            out.update({f"{prefix}/f_mean": float(np.mean(f1)),
                        f"{prefix}/f_std": float(np.std(f1)), f"{prefix}/n": len(f1),
                        f"{prefix}/epochs": epochs(kruns)})
            for name, key in (("precision", OPENSET_PRECISION), ("recall", OPENSET_RECALL)):
                if (v := _mean(kruns, key)) is not None:
                    out[f"{prefix}/{name}_mean"] = v
    oneclass = [r for r in runs if ONECLASS_AUROC in r]
    for model, g in group(oneclass, lambda r: str(r.get(RUN_MODEL))).items():
        per_digit = _per_digit(g, ONECLASS_AUROC)
        out.update({f"fig5/{model}/auroc/{d}": v for d, v in sorted(per_digit.items())})
        out[f"fig5/{model}/auroc_mean"] = float(np.mean(list(per_digit.values())))
        for score in POSTHOC_SCORES:  # the same networks ranked by post-hoc scores
            if posthoc := _per_digit(g, posthoc_key(ONECLASS_PREFIX, score, "auroc")):
                out[f"fig5/{model}/{score}/auroc_mean"] = float(np.mean(list(
                    posthoc.values())))
        out[f"fig5/{model}/digits"] = len(per_digit)
        out[f"fig5/{model}/epochs"] = epochs(g)
    rings = [r for r in runs if RINGS_FIGURE in r]
    for name in (TEST_ACC, threshold_key(TEST_ACC, 0.90), threshold_key(TEST_ACC, 0.99), TEST_MSE):
        if (v := _mean(rings, name)) is not None:
            out[f"fig2/{name.split('/')[1]}"] = v
    if rings:
        out["fig2/steps"] = int(np.mean(values(rings, RUN_STEPS)))
    out.update(rings_check(rings))
    return out


def newest_json(runs: list[dict], name: str) -> dict:
    """The JSON file ``name`` of the newest of ``runs`` (by run dir) that has one; ``{}``."""
    found = sorted(p for r in runs if (p := Path(r["dir"]) / name).is_file())
    return json.loads(found[-1].read_text()) if found else {}


def rings_check(rings: list[dict]) -> dict:
    """``fig2/c_*`` and ``fig2/gamma_*`` from the newest rings run with a
    ``rings_check.json`` (``overgen.report.rings_check``): the median and 10th percentile of
    ``c`` on ring samples, the largest ``c`` at the centres and far points, the smallest
    ``gamma`` at the centres and the share of ring samples with ``gamma > 0``."""
    if not (c := newest_json(rings, RINGS_CHECK_FILE)):
        return {}
    return {"fig2/c_rings_median": c["c_rings_median"], "fig2/c_rings_p10": c["c_rings_p10"],
            "fig2/c_centres_max": max(c["c_centres"]), "fig2/c_far_max": max(c["c_far"]),
            "fig2/gamma_centres_min": min(c["gamma_centres"]),
            "fig2/gamma_rings_positive": c["gamma_rings_positive"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overgen.report.summary")
    parser.add_argument("dirs", nargs="*", help="run dirs of the main evaluations (none: the "
                        "ablation values alone)")
    parser.add_argument("--ablation", help="JSON written by overgen.report.ablation --summary")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if missing_dirs("overgen.report.summary", args.dirs):
        return 2
    out = summarize(find_runs(args.dirs))
    if args.ablation:
        with open(args.ablation) as f:
            out.update(json.load(f))
    atomic_write_json(args.out, out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
