"""examples/: the score on anyone's models runs end to end on a tiny setting, and its
thresholded accuracy of y~ = c(x) y(x) matches a brute-force computation."""

from __future__ import annotations

import importlib.util

import matplotlib.image
import numpy as np
import torch
from helpers import ROOT


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_score_any_model_against_a_full_jacobian(tmp_path):
    out = tmp_path / "figs" / "accuracy.png"
    alpha, beta = 5.0, 10.0
    result = _example("score_any_model").main(
        [str(out), "--size", "8", "--classes", "2", "--train", "128", "--test", "40",
         "--steps", "60", "--points", "21", "--curvature", "exact", "--alpha", str(alpha),
         "--beta", str(beta)])
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100
    # independently: the full Jacobian of r per image, its trace, c = exp(-alpha e / D) Gamma
    dae, classifier = result["dae"], result["classifier"]
    x, y = result["x_test"].double(), result["y_test"].numpy()
    dae.double(), classifier.double()
    d = x[0].numel()
    with torch.no_grad():
        e = ((dae(x) - x) ** 2).flatten(1).sum(1).numpy()
        probs = classifier(x).softmax(-1).numpy()
    trace = np.array([torch.autograd.functional.jacobian(dae, xi[None]).reshape(d, d).trace()
                      .item() for xi in x])
    gamma = (trace - d) / d
    c = np.exp(-alpha * e / d) * np.exp(-beta * np.maximum(gamma, 0))
    y_tilde = c[:, None] * probs
    expected = [np.mean((y_tilde.argmax(1) == y) & (y_tilde.max(1) >= t))
                for t in result["thresholds"]]
    got = result["curves"]["held-out accuracy, y~ = c y"]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert 0 < got[10] < 1  # the curve at t = 0.5 tells passing from failing images apart
