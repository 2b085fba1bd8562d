"""The report from a few hand-written runs: aggregated numbers, embedded figures, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from overgen.metrics import FPR_GRID, average_roc
from overgen.report import main

BASE = {"run/seed": 1, "run/epochs": 3, "run/steps": 100, "run/curvature": None,
        "run/test_images": 10000}
FROM = "steps=100, test images=10000"


def _run(root: Path, name: str, files: dict | None = None, **metrics) -> Path:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    for fname, content in (files or {}).items():
        if fname.endswith(".png"):
            plt.imsave(folder / fname, np.eye(4))
        else:
            (folder / fname).write_text(json.dumps(content))
    (folder / "metrics.json").write_text(json.dumps({**BASE, **metrics}))
    return folder


def _table_one(root: Path) -> None:
    fooling = {"fooling/trials": 200, "fooling/max_steps": 10000, "fooling/target": "y"}
    _run(root, "t1/0", {"fool.png": None}, **fooling, **{
        "run/model": "cnn", "run/data": "mnist", "test/acc": 0.99, "test/acc@0.90": 0.98,
        "test/acc@0.99": 0.96, "fooling/rate@0.90": 1.0, "fooling/steps@0.90": 60.0,
        "fooling/rate@0.99": 0.9, "fooling/steps@0.99": 180.0, "figure/fooling": "fool.png",
        "fooling/rate@0.50": 1.0, "fooling/steps@0.50": 20.0,  # a threshold beyond Table I
        "ood/gaussian/final/auroc": 0.9, "ood/gaussian/final/fpr@95tpr": 0.25,
        "ood/gaussian/msp/auroc": 0.8, "ood/inverted/final/auroc": 0.7})
    _run(root, "t1/1", **fooling, **{
        "run/model": "cnn", "run/data": "mnist", "test/acc": 0.98, "test/acc@0.90": 0.97,
        "test/acc@0.99": 0.94, "fooling/rate@0.90": 0.9, "fooling/steps@0.90": 70.0,
        "fooling/rate@0.99": 0.8, "fooling/steps@0.99": 200.0,
        "ood/gaussian/final/auroc": 0.7})
    _run(root, "t1/2", **fooling, **{
        "run/model": "dae_sym", "run/data": "mnist", "run/curvature": "hutchinson",
        "test/acc": 0.985, "test/mse": 0.003, "fooling/rate@0.90": 0.0,
        "fooling/steps@0.90": None, "run/alpha": 20.0, "run/alpha@0.90": 20.0,
        "run/alpha@0.99": 3.0})


def _openset(root: Path) -> None:
    def point(model, k, subset, f1, auroc, curvature=None, **extra):
        _run(root, f"os/{model}_{k}_{subset}", **{
            "run/model": model, "run/data": "mnist_openset", "run/curvature": curvature,
            "run/alpha@0.90": 20.0 if curvature else None,
            "run/alpha@0.99": 3.0 if curvature else None,
            "test/acc": 0.9, "openset/f1": f1, "openset/known": k, "openset/threshold": 0.99,
            "openset/openness": 1 - (k / 10) ** 0.5, "ood/auroc": auroc, **extra})
    point("cnn", 2, 0, 0.6, 0.8, **{"ood/msp/auroc": 0.8, "ood/mahalanobis/auroc": 0.7,
                                    "ood/mahalanobis/fpr@95tpr": 0.5,
                                    "openset/f1_perclass": 0.5, "openset/oscr": 0.6})
    point("cnn", 2, 1, 0.8, 0.9, **{"ood/msp/auroc": 0.9, "ood/mahalanobis/auroc": 0.8,
                                    "openset/f1_perclass": 0.7, "openset/oscr": 0.8})
    point("cnn", 10, 0, 0.9, None, **{"openset/f1_perclass": 0.9, "openset/oscr": None})
    point("dae_sym", 2, 0, 0.95, 0.99, curvature="exact")


def _oneclass(root: Path) -> None:
    perfect, diagonal = {"fpr": [0, 0, 1], "tpr": [0, 1, 1]}, {"fpr": [0, 1], "tpr": [0, 1]}
    dae = {"run/model": "dae_sym", "run/data": "mnist_oneclass", "run/curvature": "exact"}
    _run(root, "oc/dae0", {"roc.json": perfect}, **dae, **{
        "oneclass/digit": 0, "oneclass/auroc": 0.9, "oneclass/roc_file": "roc.json",
        "oneclass/mahalanobis/auroc": 0.7, "oneclass/reconstruction/auroc": 0.95})
    _run(root, "oc/dae1", {"roc.json": diagonal}, **dae,  # no roc_file key: roc.json fallback
         **{"oneclass/digit": 1, "oneclass/auroc": 0.8, "oneclass/mahalanobis/auroc": 0.9})
    _run(root, "oc/svm0", {"roc.json": perfect}, **{  # a stale absolute path (moved run)
        "run/model": "ocsvm", "run/data": "mnist_oneclass", "run/epochs": 0,
        "oneclass/digit": 0, "oneclass/auroc": 0.95, "oneclass/roc_file": "/gone/roc.json"})


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("multirun")
    _table_one(root)
    _openset(root)
    _oneclass(root)
    rings = _run(root, "rings", {"rings2d.png": None}, **{
        "run/model": "dae_mlp", "run/data": "rings2d", "run/curvature": "exact",
        "run/steps": 300, "test/acc": 1.0})
    metrics = json.loads((rings / "metrics.json").read_text())
    metrics["figure/rings2d"] = str(rings / "rings2d.png")
    (rings / "metrics.json").write_text(json.dumps(metrics))
    assert main([str(root / "t1"), str(root / "os"), str(root / "oc"), str(root / "rings"),
                 "--out", str(root / "out")]) == 0
    return root, (root / "out" / "report.md").read_text()


def test_table_one(report):
    md = report[1]
    assert ("| cnn | ours | 98.50 | 97.50 | 95.00 | 95.0% (65.0) | 85.0% (190.0) "
            f"| n=2, epochs=3, {FROM} |") in md
    assert "| CNN | paper | 99.35 | 99.23 | ~99 | 100% (63.5) | 99% (187.1) | epochs=100 |" in md
    assert ("| dae_sym (hutchinson curvature) | ours | 98.50 | – | – | 0.0% | – "
            f"| n=1, epochs=3, {FROM} |") in md
    assert "200 trials per run, at most 10000 updates" in md
    assert "COOL" not in md.split("## Fig. 4")[0]  # no paper row without runs of that model
    table_one_text = md.split("## Table I")[1].split("## Fig. 4")[0]
    assert ("The dAE's alpha per threshold: dae_sym (hutchinson curvature): alpha 20 at "
            "0.90, 3 at 0.99.") in table_one_text


def test_openset(report):
    md = report[1]
    assert (f"| K | openness | cnn (n=3, epochs=3, {FROM}) "
            f"| dae_sym (exact curvature) (n=1, epochs=3, {FROM}) |") in md
    assert "| 2 | 0.553 | 0.700 ± 0.100 (n=2) | 0.950 ± 0.000 (n=1) |" in md
    assert "| 10 | 0.000 | 0.900 ± 0.000 (n=1) | – |" in md
    assert "| model | score | AUROC | AP in | AP out | FPR@95TPR | from |" in md
    assert f"| cnn | final | 0.850 [n=2] | – | – | – | n=3, epochs=3, {FROM} |" in md
    assert f"| cnn | msp | 0.850 [n=2] | – | – | – | n=3, epochs=3, {FROM} |" in md
    assert ("| cnn | mahalanobis | 0.750 [n=2] | – | – | 0.500 [n=1] "
            f"| n=3, epochs=3, {FROM} |") in md
    assert "| dae_sym (exact curvature) | final | 0.990 |" in md
    assert "| dae_sym (exact curvature) | msp |" not in md  # no post-hoc scores in its run
    # the F conventions: pooled 0.767, per-class FN 0.7, OSCR 0.7 from the two runs with unknowns
    assert f"| cnn | 0.767 | 0.700 | 0.700 [n=2] | n=3, epochs=3, {FROM} |" in md
    assert "one FP and not also an FN" in md
    assert "threshold 0.99" in md
    openset_text = md.split("## Fig. 4")[1].split("## Fig. 5")[0]
    # only the open-set threshold's alpha; cnn has none
    assert ("The dAE's alpha at the threshold: dae_sym (exact curvature): alpha 3 at 0.99."
            in openset_text)


def test_far_ood(report):
    """Sets as columns, only those some run has; the mean AUROC, then FPR@95TPR."""
    text = report[1].split("### Far-OOD sets")[1].split("## Fig. 5")[0]
    tables = [t for t in text.split("\n\n") if t.startswith("| model")]
    assert len(tables) == 2
    auroc, fpr = tables
    assert auroc.startswith("| model | score | gaussian | inverted | from |")
    assert f"| cnn | final | 0.800 | 0.700 [n=1] | n=2, epochs=3, {FROM} |" in auroc
    assert f"| cnn | msp | 0.800 [n=1] | – | n=2, epochs=3, {FROM} |" in auroc
    assert "mahalanobis" not in auroc and "dae_sym" not in auroc
    assert fpr.startswith("| model | score | gaussian | from |")
    assert f"| cnn | final | 0.250 [n=1] | n=2, epochs=3, {FROM} |" in fpr


def test_oneclass(report):
    md = report[1]
    assert ("| dae_sym (exact curvature) | 0.850 ± 0.050 | 0.964 | 0,1 | 2 "
            f"| n=2, epochs=3, {FROM} |") in md
    assert f"| ocsvm | 0.950 ± 0.000 | 0.952 | 0 | 1 | n=1, epochs=0, {FROM} |" in md
    assert "| 1 | 0.800 | – |" in md
    dae = "| dae_sym (exact curvature)"
    assert f"{dae} | final | 0.850 ± 0.050 | n=2, epochs=3, {FROM} |" in md
    assert f"{dae} | mahalanobis | 0.800 ± 0.100 | n=2, epochs=3, {FROM} |" in md
    assert f"{dae} | reconstruction | 0.950 ± 0.000 [n=1] | n=2, epochs=3, {FROM} |" in md
    assert f"| ocsvm | final | 0.950 ± 0.000 | n=1, epochs=0, {FROM} |" in md


def test_figures_embedded(report):
    root, md = report
    for name in ("fig4_openset.png", "fig5_oneclass.png"):
        assert f"](report_figures/{name})" in md
    assert "../rings/rings2d.png" in md and "../t1/0/fool.png" in md
    page = (root / "out" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4


def test_fooling_caption_names_the_run_thresholds(report):
    fig3 = report[1].split("## Fig. 3")[1]
    assert ("thresholds 0.50, 0.90, 0.99, fooled 100.0% at 0.50, 100.0% at 0.90, 90.0% at "
            "0.99. Above each image: its target digit") in fig3


def test_average_roc_by_hand():
    tpr = average_roc([(np.array([0.0, 1.0]), np.array([0.0, 1.0])),
                       (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0]))])
    assert tpr[np.searchsorted(FPR_GRID, 0.5)] == pytest.approx(0.75)
    assert tpr[0] == pytest.approx(0.5) and tpr[-1] == pytest.approx(1.0)


@pytest.mark.e2e
def test_sections_absent_and_cli(tmp_path):
    _run(tmp_path, "only_rings", **{"run/model": "dae_mlp", "run/data": "rings2d"})
    done = subprocess.run([sys.executable, "-m", "overgen.report", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "report.md").read_text()
    assert "## Runs" in md
    assert f"| rings2d | dae_mlp (unknown curvature) | n=1, epochs=3, {FROM} |" in md
    assert "Table I" not in md and "Fig. 4" not in md and "Fig. 5" not in md
    assert (tmp_path / "report.html").is_file()


def test_errors(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no readable metrics.json found" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "skipping" in err and "no readable metrics.json found" in err
