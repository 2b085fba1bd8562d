"""``overgen.figures`` builds plain ``Figure`` objects: importing it (or the report) leaves
the caller's matplotlib backend alone, and no figure goes through pyplot."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import overgen

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
    "fooling.png": figures.fooling_figure(result, [0, 1]),
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
