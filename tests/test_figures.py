"""``overgen.figures`` builds plain ``Figure`` objects: importing it (or the report) leaves
the caller's matplotlib backend alone, and no figure goes through pyplot."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import overgen
import overgen.figures as figures

SRC = Path(overgen.__file__).resolve().parents[1]

BUILD = """
import sys
from types import SimpleNamespace

import matplotlib
import numpy as np
import torch

matplotlib.use("svg")

import overgen.figures as figures  # noqa: E402
import overgen.report.render  # noqa: F401, E402
from overgen.metrics import FPR_GRID  # noqa: E402
from overgen.utils.io import atomic_savefig  # noqa: E402

assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
if "matplotlib.pyplot" in sys.modules:  # torchmetrics imports it; no figure may go through it
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise AssertionError("a figure built with pyplot")

    for name in ("figure", "subplots", "subplot", "gcf", "gca", "subplot_mosaic"):
        setattr(plt, name, refuse)

rng = np.random.default_rng(0)
panels = {"y_tilde": rng.random((8, 8, 3)), "y": rng.random((8, 8, 3)),
          "error_factor": rng.random((8, 8)), "gamma_factor": rng.random((8, 8)),
          "extent": np.array([-2.5, 2.5, -2.5, 2.5])}
samples = rng.normal(size=(30, 2)), rng.integers(0, 3, 30)
result = SimpleNamespace(success=torch.tensor([[-1, -1], [5, 7]]), target=torch.tensor([0, 1]),
                         image=torch.rand(2, 1, 28, 28), thresholds=[0.9, 0.99])
built = {
    "rings.png": figures.rings_figure(panels, samples, "title"),
    "roc.png": figures.roc_figure({"dae_sym": {"tpr": FPR_GRID, "auc": [0.5], "curves": 1}}),
    "openset.png": figures.openset_figure(
        {"cnn": [{"openness": 0.1, "mean": 0.9, "std": 0.01}]}, "0.90"),
    "fooling.png": figures.fooling_figure(result, [0, 1], np.array([[0.1, 0.2], [0.95, 0.991]])),
}
for name, fig in built.items():
    assert type(fig) is matplotlib.figure.Figure, (name, type(fig))
    atomic_savefig(fig, f"{sys.argv[1]}/{name}")
    with open(f"{sys.argv[1]}/{name}", "rb") as f:
        assert f.read(8) == b"\\x89PNG\\r\\n\\x1a\\n", name
assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
print("ok")
"""


@pytest.mark.e2e
def test_figures_keep_the_backend_and_skip_pyplot(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("MPLBACKEND", None)
    proc = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


def test_no_pyplot_or_backend_switch_in_the_package():
    """Every matplotlib figure lives in ``overgen/figures.py``, built without pyplot."""
    for path in sorted((SRC / "overgen").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                names = []
            assert not [n for n in names if n.startswith("matplotlib.pyplot")], path
            if isinstance(node, ast.Attribute) and node.attr == "use":
                assert ast.unparse(node.value) != "matplotlib", path
    assert not (SRC / "overgen" / "report" / "figures.py").exists()


def _rings_inputs(classes: int):
    rng = np.random.default_rng(0)
    panels = {"y_tilde": rng.random((8, 8, classes)), "y": rng.random((8, 8, classes)),
              "error_factor": rng.random((8, 8)), "gamma_factor": rng.random((8, 8)),
              "extent": np.array([-2.5, 2.5, -2.5, 2.5])}
    return panels, (rng.normal(size=(30, 2)), np.arange(30) % classes)


def test_rings_figure_has_a_colour_bar_per_class_and_per_factor():
    """Fig. 2: beside B and C a 0-1 bar per class (white to its colour), one beside each of
    the two factor panels of D; every panel titled."""
    fig = figures.rings_figure(*_rings_inputs(3), "2 training steps")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    panels = [ax for ax in fig.axes if ax not in bars]
    assert len(bars) == 3 + 2 and len(panels) == 4 + 1
    assert all(ax.get_ylim() == (0, 1) for ax in bars)
    assert [ax.get_title() for ax in bars[:3]] == ["2", "1", "0"]  # the class each bar shows
    titles = [ax.get_title() for ax in panels]
    assert titles[0] == "A. training samples" and titles[2] == "C. softmax $y(x)$"
    assert all(titles) and fig.get_suptitle() == "2 training steps"
