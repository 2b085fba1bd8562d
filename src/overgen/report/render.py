"""Runs -> report blocks (headings, paragraphs, tables, images) -> ``report.md`` and a
self-contained ``report.html`` (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import os
from datetime import datetime, timezone

from overgen.figures import openset_figure, roc_figure
from overgen.outputs import (
    FAR_OOD_SETS,
    FINAL_SCORE,
    FOOLING_FIGURE,
    FOOLING_PREFIX,
    FOOLING_RATE,
    ONECLASS_PREFIX,
    OOD_KEYS,
    OPENSET_F1,
    OPENSET_F1_PERCLASS,
    OPENSET_THRESHOLD,
    RINGS_FIGURE,
    RUN_DATA,
    TEST_ACC,
    far_ood_key,
    key_thresholds,
    threshold_key,
)
from overgen.paper import PAPER_EPOCHS, paper_aucs
from overgen.report.collect import (
    group,
    has_prefix,
    label,
    listed,
    oneclass_summary,
    openset_points,
    provenance,
    run_file,
    shrunk_by,
    values,
)
from overgen.report.tables import (
    THRESHOLDS,
    alpha_settings,
    far_ood_table,
    fooling_settings,
    oneclass_digit_table,
    oneclass_score_table,
    oneclass_table,
    ood_table,
    openset_conventions_table,
    openset_table,
    overview_table,
    table_one,
)
from overgen.utils.io import atomic_savefig, atomic_write_text
from overgen.utils.provenance import git_commit, versions

FIGURE_DIR = "report_figures"
# a block: ("h", level, text) | ("p", text) | ("table", (header, rows)) | ("img", path, caption)
Block = tuple


def _save(fig, out: str, name: str) -> str:
    path = os.path.join(out, FIGURE_DIR, name)
    atomic_savefig(fig, path)
    return path


def _where(folder: str, out: str) -> str:
    """A run dir for captions and text: relative to the report's folder ``out``, never
    absolute (a report moves with its runs)."""
    return os.path.relpath(folder, out)


def table_one_blocks(runs: list[dict]) -> list[Block]:
    runs = [r for r in runs if has_prefix(r, FOOLING_PREFIX)
            or (r.get(RUN_DATA) == "mnist" and TEST_ACC in r)]
    if not runs:
        return []
    text = ("Accuracy in %; acc@t: argmax right and final score >= t. fooled@t: share of "
            "fooling trials whose final score for the target reached t; in parentheses the "
            "mean updates of the successful trials (each a mean over runs). Rows marked "
            f"'paper' are the paper's values (docs/method.md §3, {PAPER_EPOCHS} epochs), not ours.")
    if any(has_prefix(r, FOOLING_PREFIX) for r in runs):
        text += f" Fooling: {fooling_settings(runs)}."
    if alpha := alpha_settings(runs, list(THRESHOLDS)):
        text += f" The dAE's alpha per threshold: {alpha}."
    return [("h", 2, "Table I: accuracy and fooling"), ("p", text),
            ("table", table_one(runs))]


def openset_blocks(runs: list[dict], out: str) -> list[Block]:
    runs = [r for r in runs if OPENSET_F1 in r]
    points = openset_points(runs)
    if not points:
        return []
    threshold = listed(runs, OPENSET_THRESHOLD)
    text = (f"F-measure (pooled counts, threshold {threshold}) against openness; mean and "
            "std (ddof 0) over the subsets of each K, n = number of subsets (runs). The "
            "paper's claim: the dAE above CNN and COOL at every openness.")
    thresholds = [f"{t:.2f}" for t in sorted(set(values(runs, OPENSET_THRESHOLD)))]
    if alpha := alpha_settings(runs, thresholds):
        text += f" The dAE's alpha at the threshold: {alpha}."
    blocks = [
        ("h", 2, "Fig. 4: open set"),
        ("p", text),
        ("img", _save(openset_figure(points, threshold), out, "fig4_openset.png"),
         "F-measure vs openness, std over subsets as error bars"),
        ("table", openset_table(points, runs)),
    ]
    if any(OPENSET_F1_PERCLASS in r for r in runs):
        blocks += [
            ("h", 3, "F conventions and OSCR (beyond the paper)"),
            ("p", "F (pooled), as above: a known-digit image accepted under a wrong label "
                  "is one FP and not also an FN (docs/method.md §5); F (per-class FN) counts "
                  "it as both, pooled over the test set. OSCR area: the area under the "
                  "correct-classification rate of known images against the share of unknown "
                  "images accepted as the threshold sweeps (only runs with unknown digits "
                  "that score every image in full). Mean over the open-set runs of all K."),
            ("table", openset_conventions_table(runs))]
    ood = [r for r in runs if any(k in r for k in OOD_KEYS)]
    if ood:
        blocks += [("h", 3, "Known vs unknown test samples (beyond the paper)"),
                   ("p", "Ranked by the max final score ('final', the dAE's y~ with the alpha "
                         "of the threshold) and by post-hoc scores of the same trained "
                         "models: msp (max class probability), max_logit, energy (logsumexp "
                         "of the logits), mahalanobis (minus the distance to the closest "
                         "training-class mean on the hidden layer), reconstruction (the "
                         "dAE's exp(-alpha e/D) alone); docs/method.md §6. Mean over the "
                         "open-set runs of all K (runs without unknown digits give no "
                         "value). The known digits are the positive class (pytorch-ood "
                         "takes the unknowns as positive); AP in / AP out: average precision "
                         "with knowns / unknowns (score negated) positive, not pytorch-ood's "
                         "trapezoidal AUPR; FPR@95TPR: the share of unknowns accepted at 95% "
                         "of the knowns accepted."),
                   ("table", ood_table(ood))]
    return blocks


def far_ood_blocks(runs: list[dict]) -> list[Block]:
    runs = [r for r in runs if any(r.get(far_ood_key(s, FINAL_SCORE, "auroc")) is not None
                                   for s in FAR_OOD_SETS)]
    if not runs:
        return []
    return [("h", 3, "Far-OOD sets (beyond the paper)"),
            ("p", "The test images of the training digits (positive) against sets that are not "
                  "digits (docs/method.md §7): gaussian (N(0.5, 0.25^2) per pixel, clipped), "
                  "uniform (U[0, 1) per pixel), constant (one U[0, 1) value per image), "
                  "inverted (1 - x of MNIST test images) and fooling (the final images of a "
                  "fooling run's trials); ranked by the max final score and by the post-hoc "
                  "scores of the OOD table. Mean over the runs with far-OOD sets; AUROC, then "
                  "FPR@95TPR."),
            ("table", far_ood_table(runs, "auroc")),
            ("table", far_ood_table(runs, "fpr@95tpr"))]


def oneclass_blocks(runs: list[dict], out: str) -> list[Block]:
    runs = [r for r in runs if has_prefix(r, ONECLASS_PREFIX)]
    if not runs:
        return []
    summary = oneclass_summary(runs)
    blocks = [("h", 2, "Fig. 5: 1-class"),
              ("p", "One run per digit: positives are that digit's test images. ROC curves "
                    "are averaged vertically (mean TPR on a common FPR grid, linear "
                    "interpolation, each run's curve weighted equally); AUC is the mean of the "
                    f"runs' AUCs. The paper's AUCs: {paper_aucs()}.")]
    if any(s["tpr"] is not None for s in summary.values()):
        blocks.append(("img", _save(roc_figure(summary), out, "fig5_oneclass.png"),
                       "Vertically averaged ROC per model"))
    blocks += [("table", oneclass_table(summary)), ("h", 3, "AUC per digit"),
               ("table", oneclass_digit_table(runs)),
               ("h", 3, "AUC by score (beyond the paper)"),
               ("p", "The same runs ranked by post-hoc scores of the same trained models "
                     "beside their final score (docs/method.md §6); the OC-SVM has only its "
                     "decision function."),
               ("table", oneclass_score_table(runs))]
    return blocks


def rings_blocks(runs: list[dict], out: str) -> list[Block]:
    runs = [r for r in runs if RINGS_FIGURE in r]
    if not runs:
        return []
    blocks: list[Block] = [("h", 2, "Fig. 2: 2-D rings")]
    for r in sorted(runs, key=lambda r: r["dir"]):
        path, where = run_file(r, RINGS_FIGURE), _where(r["dir"], out)
        acc = values([r], TEST_ACC)
        caption = (f"{label(r)}, {r.get('run/steps') or '?'} steps, {provenance([r])}"
                   f"{f', test acc {100 * acc[0]:.2f}%' if acc else ''}; run {where}")
        missing = os.path.basename(str(r["figure/rings2d"]))
        blocks.append(("img", path, caption) if path else
                      ("p", f"{caption}: figure file not found ({missing})"))
    return blocks


def fooling_blocks(runs: list[dict], out: str) -> list[Block]:
    """One generated-image grid per setting (the first run that has one); the caption names
    the run's thresholds (its ``fooling/rate@t`` keys) and rates."""
    blocks: list[Block] = []
    for name, g in group([r for r in runs if FOOLING_FIGURE in r]).items():
        found = [(r, p) for r in g if (p := run_file(r, FOOLING_FIGURE))]
        if found:
            r, path = found[0]
            thresholds = key_thresholds(r, FOOLING_RATE)
            fooled = ", ".join(f"{100 * r[threshold_key(FOOLING_RATE, t)]:.1f}% at {t:.2f}"
                               for t in thresholds)
            blocks.append(("img", path, (
                f"{name}: one fooling image per target digit, run {_where(r['dir'], out)} "
                f"({provenance([r])}), thresholds {', '.join(f'{t:.2f}' for t in thresholds)}, "
                f"fooled {fooled}. Above each image: its target digit, how many thresholds it "
                "reached, and its final score at each threshold (not in older runs' figures)")))
    return [("h", 2, "Fig. 3: fooling images"), *blocks] if blocks else []


def header(runs: list[dict]) -> str:
    """When and with what the report was made, and the commits of its runs."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    made = ", ".join(f"{k} {v}" for k, v in versions().items())
    commits = group(runs, lambda r: str(r.get("run/git_commit") or "not recorded"))
    of_runs = "; ".join(f"{c} ({len(g)} runs)" for c, g in sorted(commits.items()))
    commit = git_commit() or "unknown (not a git checkout)"
    return (f"Generated {now} from the source at commit {commit} with {made}. The runs' "
            f"commits: {of_runs}.")


def shrunk_warning(runs: list[dict]) -> list[Block]:
    shrunk = [r for r in runs if shrunk_by(r)]
    if not shrunk:
        return []
    return [("p", f"WARNING: {len(shrunk)} of {len(runs)} runs were cut short of their "
                  "protocol (limit_*_batches, fast_dev_run, or max_steps ending an epoch-based "
                  "training): their numbers are not comparable with the paper's. Every row "
                  "from such runs says SHRUNK and by what.")]


def build_blocks(runs: list[dict], dirs: list[str], out: str) -> list[Block]:
    """The whole report; sections without runs are left out. Writes the new figures."""
    under = ", ".join(_where(d, out) for d in dirs)
    intro = (f"Runs (metrics.json files) found: {len(runs)}, under {under} (relative to this "
             "report). Every number is a mean over runs; 'n=10, epochs=3, steps=5625, test "
             "images=10000' gives the run count, the training epochs and steps and the test "
             "images it came from, '[n=k]' marks a number from only k of the row's runs. "
             "dAE rows name the curvature method used for Gamma.")
    return [("h", 1, "overgen report"), ("p", header(runs)), ("p", intro),
            *shrunk_warning(runs), ("h", 2, "Runs"),
            ("table", overview_table(runs)), *table_one_blocks(runs),
            *openset_blocks(runs, out), *far_ood_blocks(runs), *oneclass_blocks(runs, out),
            *rings_blocks(runs, out), *fooling_blocks(runs, out)]


def to_markdown(blocks: list[Block], out: str) -> str:
    """Markdown; images link to their PNG files relative to ``out``."""
    parts = []
    for kind, *body in blocks:
        if kind == "h":
            parts.append(f"{'#' * body[0]} {body[1]}")
        elif kind == "p":
            parts.append(body[0])
        elif kind == "table":
            header, rows = body[0]
            lines = [header, ["---"] * len(header), *rows]
            parts.append("\n".join("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
                                   for line in lines))
        else:
            parts.append(f"![{body[1]}]({os.path.relpath(body[0], out)})\n\n*{body[1]}*")
    return "\n\n".join(parts) + "\n"


def _data_uri(path: str) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
         "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
         "img{max-width:100%}figcaption{font-size:.85em;color:#555}")


def to_html(blocks: list[Block]) -> str:
    """A static page with every figure embedded."""
    esc = html.escape
    parts = []
    for kind, *body in blocks:
        if kind == "h":
            parts.append(f"<h{body[0]}>{esc(body[1])}</h{body[0]}>")
        elif kind == "p":
            parts.append(f"<p>{esc(body[0])}</p>")
        elif kind == "table":
            header, rows = body[0]
            head = "".join(f"<th>{esc(c)}</th>" for c in header)
            trs = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                          for r in rows)
            parts.append(f"<table><tr>{head}</tr>{trs}</table>")
        else:
            parts.append(f'<figure><img src="{_data_uri(body[0])}" alt="{esc(body[1])}">'
                         f"<figcaption>{esc(body[1])}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>overgen report"
            f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


def write_report(runs: list[dict], dirs: list[str], out: str) -> tuple[str, str]:
    """Write ``report.md``, ``report.html`` (and ``report_figures/``) in ``out``."""
    blocks = build_blocks(runs, dirs, out)
    paths = os.path.join(out, "report.md"), os.path.join(out, "report.html")
    atomic_write_text(paths[0], to_markdown(blocks, out))
    atomic_write_text(paths[1], to_html(blocks))
    return paths
