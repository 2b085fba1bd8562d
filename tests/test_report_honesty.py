"""A report that cannot mislead: shrunk runs flagged with steps and test images, one colour per
model in every figure, the paper's AUCs on Fig. 5, a dated header with commit and versions,
no absolute paths, the OOD conventions stated."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import torch
from matplotlib.colors import to_rgb
from test_report import _oneclass, _openset, _run

from overgen.figures import MODEL_COLOURS, openset_figure, roc_figure, styles
from overgen.report import main
from overgen.report.collect import find_runs, oneclass_summary, openset_points, provenance
from overgen.utils.provenance import git_commit

FULL = {"run/model": "cnn", "run/data": "mnist", "test/acc": 0.99, "run/max_epochs": 3,
        "run/max_steps": -1, "run/limit_train_batches": None, "run/limit_test_batches": 1.0,
        "run/fast_dev_run": False, "run/git_commit": "abc123"}


def _shrunk_runs(root: Path) -> None:
    _run(root, "full", **FULL)
    _run(root, "tiny", **{**FULL, "run/max_epochs": 100, "run/max_steps": 20, "run/steps": 20,
                          "run/limit_test_batches": 2, "run/test_images": 1000})
    rings = {**FULL, "run/model": "dae_mlp", "run/data": "rings2d", "run/max_epochs": -1,
             "run/max_steps": 50000, "run/steps": 50000}
    _run(root, "rings", **rings)  # step-based training: max_steps is its protocol
    old = _run(root, "old", **{"run/model": "cnn", "run/data": "mnist", "test/acc": 0.5})
    (old / ".hydra" / "config.yaml").write_text(  # a run from before the run/limit_* keys
        "trainer:\n  max_epochs: 3\n  limit_train_batches: 5\n  fast_dev_run: true\n")


def test_shrunk_runs_are_flagged_with_steps_and_test_images(tmp_path):
    _shrunk_runs(tmp_path)
    runs = {Path(r["dir"]).name: r for r in find_runs([str(tmp_path)])}
    assert provenance([runs["full"]]) == "n=1, epochs=3, steps=100, test images=10000"
    assert provenance([runs["rings"]]) == "n=1, epochs=3, steps=50000, test images=10000"
    assert provenance([runs["full"], runs["tiny"]]) == (
        "n=2, epochs=3, steps=20/100, test images=1000/10000, SHRUNK (1 of 2): "
        "limit_test_batches=2, max_steps=20")
    assert provenance([runs["old"]]).endswith(
        "SHRUNK (1 of 1): limit_train_batches=5, fast_dev_run")
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "WARNING: 2 of 4 runs were cut short" in md
    assert ("| mnist | cnn | n=3, epochs=3, steps=20/100, test images=1000/10000, SHRUNK "
            "(2 of 3): limit_train_batches=5, fast_dev_run, limit_test_batches=2, "
            "max_steps=20 |") in md


def test_full_runs_carry_no_warning(tmp_path):
    _run(tmp_path, "full", **FULL)
    assert main([str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "WARNING" not in md and "SHRUNK" not in md


def test_one_colour_per_model_in_every_figure(tmp_path):
    _openset(tmp_path)
    _oneclass(tmp_path)
    runs = find_runs([str(tmp_path)])
    fig4 = openset_figure(openset_points(runs), "0.99")
    fig5 = roc_figure(oneclass_summary([r for r in runs if "oneclass/auroc" in r]))
    drawn = [(c.get_label(), c.lines[0]) for c in fig4.axes[0].containers]  # error bars
    drawn += [(line.get_label(), line) for line in fig5.axes[0].get_lines()
              if not line.get_label().startswith("_")]
    colours = {}
    for name, line in drawn:
        colours.setdefault(name.split(" ")[0].rstrip(":"), set()).add(to_rgb(line.get_color()))
    assert colours == {"cnn": {MODEL_COLOURS["cnn"]}, "dae_sym": {MODEL_COLOURS["dae_sym"]},
                       "ocsvm": {MODEL_COLOURS["ocsvm"]}}
    assert len(set(MODEL_COLOURS.values())) == len(MODEL_COLOURS)
    assert all(len(set(c)) > 1 for c in MODEL_COLOURS.values())  # no grey: that is "other"
    two = styles(["dae_sym (exact curvature)", "dae_sym (hutchinson curvature)", "cnn"])
    assert two["dae_sym (exact curvature)"]["color"] == two["dae_sym (hutchinson curvature)"][
        "color"]
    assert two["dae_sym (exact curvature)"]["ls"] != two["dae_sym (hutchinson curvature)"]["ls"]


def test_fig5_shows_the_paper_aucs(tmp_path):
    _oneclass(tmp_path)
    _run(tmp_path, "oc/svdd3", {"roc.json": {"fpr": [0, 0.5, 1], "tpr": [0, 1, 1]}}, **{
        "run/model": "deep_svdd", "run/data": "mnist_oneclass", "oneclass/digit": 3,
        "oneclass/auroc": 0.75, "oneclass/roc_file": "roc.json"})
    fig = roc_figure(oneclass_summary(find_runs([str(tmp_path)])))
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("ocsvm: AUC 0.950 (paper 0.952)") for t in legend)
    assert any(t.startswith("dae_sym (exact curvature): AUC 0.850 (paper 0.964)")
               for t in legend)
    # beyond the paper: Deep SVDD beside its own paper's mean AUC, in its own colour
    svdd = "deep_svdd: AUC 0.750 (paper 0.948), 1 curves"
    assert svdd in legend and to_rgb(lines[svdd].get_color()) == MODEL_COLOURS["deep_svdd"]
    assert fig.get_suptitle().endswith("paper's AUCs: dae 0.964, ocsvm 0.952, cool 0.753"
                                            "\ndeep_svdd 0.948 (Ruff et al. 2018)")
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| deep_svdd | 0.750 ± 0.000 | 0.948 | 3 | 1 |" in md
    assert ("The paper's AUCs: dae 0.964, ocsvm 0.952, cool 0.753; deep_svdd 0.948 "
            "(Ruff et al. 2018).") in md


def test_header_paths_and_ood_conventions(tmp_path):
    _openset(tmp_path / "runs")
    _run(tmp_path / "runs", "rings", **{"run/model": "dae_mlp", "run/data": "rings2d",
                                                "figure/rings2d": "/elsewhere/rings2d.png"})
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    header = md.split("\n\n")[1]
    assert header.startswith(f"Generated {today} ")
    assert f"commit {git_commit() or 'unknown (not a git checkout)'} " in header
    assert f"torch {torch.__version__}" in header and "pytorch_lightning " in header
    assert "The runs' commits: not recorded (5 runs)." in header
    assert str(tmp_path) not in md and "/elsewhere" not in md
    assert "under ../runs (relative to this report)" in md
    assert "figure file not found (rings2d.png)" in md
    ood = md.split("Known vs unknown test samples")[1]
    assert "known digits are the positive class" in ood
    assert "average precision" in ood and "not pytorch-ood's trapezoidal AUPR" in ood


def test_paper_auc_only_where_a_paper_published_one():
    from overgen.paper import paper_auc

    assert [paper_auc(m) for m in ("dae_oneclass sigma=0.3", "ocsvm", "cool", "deep_svdd",
                                   "dae_separate", "cnn")] == \
        ["0.964", "0.952", "0.753", "0.948", "–", "–"]  # the paper's dAE is the joint one
