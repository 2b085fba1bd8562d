"""Report figures from aggregated ``metrics.json`` data: Fig. 4 and Fig. 5 (Agg backend).
Each model keeps one colour in every figure; settings of one model differ by line style."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from overgen.metrics import FPR_GRID  # noqa: E402
from overgen.report.collect import MODEL_ORDER  # noqa: E402
from overgen.report.tables import PAPER_AUC, paper_auc  # noqa: E402

MODEL_COLOURS = dict(zip(MODEL_ORDER, plt.get_cmap("tab10").colors, strict=False))
OTHER_COLOUR = "0.35"  # models outside MODEL_ORDER
LINE_STYLES = ("-", "--", ":", "-.")


def styles(names: list[str]) -> dict[str, dict]:
    """``{label: {"color", "ls"}}``: the colour of the label's model (its first word), the
    line style counting the labels of that model."""
    used: dict[str, int] = {}
    out = {}
    for name in names:
        model = name.split(" ")[0]
        i = used[model] = used.get(model, -1) + 1
        out[name] = {"color": MODEL_COLOURS.get(model, OTHER_COLOUR),
                     "ls": LINE_STYLES[i % len(LINE_STYLES)]}
    return out


def openset_figure(points: dict[str, list[dict]], threshold: str):
    """Fig. 4: F-measure against openness per setting, std over the subsets as error bars."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    style = styles(list(points))
    for name, pts in points.items():
        ax.errorbar([p["openness"] for p in pts], [p["mean"] for p in pts],
                    yerr=[p["std"] for p in pts], marker="o", ms=4, capsize=3, label=name,
                    **style[name])
    ax.set_xlabel("openness = 1 - sqrt(K / 10)")
    ax.set_ylabel("F-measure")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Open set (Fig. 4), threshold {threshold}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_figure(summary: dict[str, dict]):
    """Fig. 5: the vertically averaged ROC per setting, mean AUC in the legend beside the
    paper's AUC for that model; the paper's three AUCs in the title."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    style = styles(list(summary))
    for name, s in summary.items():
        if s["tpr"] is None:
            continue
        auc = f"AUC {np.mean(s['auc']):.3f}" if s["auc"] else "AUC ?"
        paper = "" if paper_auc(name) == "–" else f" (paper {paper_auc(name)})"
        ax.plot(FPR_GRID, s["tpr"], label=f"{name}: {auc}{paper}, {s['curves']} curves",
                **style[name])
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (vertical average)")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01), ax.set_aspect("equal")
    paper = ", ".join(f"{k} {v:.3f}" for k, v in PAPER_AUC.items())
    ax.set_title(f"1-class (Fig. 5)\npaper's AUCs: {paper}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
