"""overgen.report.fooling_check: a dAE's view of its fooling images, against per-image
brute force, and what the summary and the claims table read from it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import small_conv_dae
from omegaconf import OmegaConf

from overgen.models import DAEClassifier
from overgen.report import claims, fooling_check
from overgen.report.summary import summarize


def _model() -> DAEClassifier:
    torch.manual_seed(0)
    model = DAEClassifier(small_conv_dae(tied=True, unpool="switches").float(), alpha=20.0,
                          beta=10.0).eval()
    model.alpha_at = {0.5: 1.0, 0.99: 3.0}
    # a stand-in gamma per image, some positive: deterministic, and the same for any subset
    model.curvature = lambda v: v.flatten(1).mean(1) - 0.5
    return model


def test_error_bound_is_where_the_error_factor_meets_the_threshold():
    # exp(-3 m) = 0.99 <=> m = -ln(0.99) / 3 = 0.0033501 (hand-worked)
    assert fooling_check.error_bound(0.99, 3.0) == pytest.approx(0.0033501, abs=1e-7)
    for t, alpha in ((0.9, 20.0), (0.99, 3.0), (0.5, 1.0)):
        assert math.exp(-alpha * fooling_check.error_bound(t, alpha)) == pytest.approx(t)


def test_fooling_stats_against_each_image_alone():
    model = _model()
    x, targets = torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    out = fooling_check.fooling_stats(model, x, targets, [0.5, 0.99])
    y_t, mse, best = [], [], {0.5: 0.0, 0.99: 0.0}
    for xi, t in zip(x, targets, strict=True):
        with torch.no_grad():
            xi = xi[None]
            y_t.append(torch.softmax(model(xi)[0], 0)[t].item())
            mse.append(((model.reconstruct(xi) - xi) ** 2).mean().item())
            gamma = model.curvature(xi).item()
        for thr, alpha in model.alpha_at.items():  # y~_t = exp(-alpha e/D) Gamma y_t
            score = math.exp(-alpha * mse[-1]) * math.exp(-10.0 * max(gamma, 0.0)) * y_t[-1]
            best[thr] = max(best[thr], score)
    assert out["fooling_images/images"] == 6
    assert out["fooling_images/y_target_median"] == pytest.approx(
        float(torch.tensor(y_t).median()), rel=1e-5)
    assert out["fooling_images/mse_median"] == pytest.approx(
        float(torch.tensor(mse).median()), rel=1e-5)
    assert out["fooling_images/mse_min"] == pytest.approx(min(mse), rel=1e-5)
    gammas = x.flatten(1).mean(1) - 0.5
    assert out["fooling_images/gamma_positive"] == pytest.approx(
        float((gammas > 0).float().mean()))
    assert out["fooling_images/y_target_share@0.50"] == pytest.approx(
        np.mean(np.array(y_t) >= 0.5))
    for thr in (0.5, 0.99):
        assert out[f"fooling_images/score_max@{thr:.2f}"] == pytest.approx(best[thr], rel=1e-5)


def test_test_stats_share_above_the_bound():
    model = _model()
    x = torch.rand(7, 1, 28, 28) * torch.linspace(0, 1, 7)[:, None, None, None]
    with torch.no_grad():
        probs = [torch.softmax(model(v[None])[0], 0) for v in x]
    labels = torch.tensor([int(p.argmax()) for p in probs])
    labels[:2] = (labels[:2] + 1) % 10  # two wrong
    t = float(torch.stack(probs).amax(-1).median())  # half the images reach t
    model.alpha_at = {t: 1.0, 0.99: 3.0}
    out = fooling_check.test_stats(model, x, labels, [t, 0.99])
    with torch.no_grad():
        mse = np.array([((model.reconstruct(v[None]) - v[None]) ** 2).mean().item() for v in x])
    assert 0 < out[f"test_images/classifier_acc@{t:.2f}"] < 1
    for thr, alpha in ((t, 1.0), (0.99, 3.0)):
        bound = -math.log(thr) / alpha
        assert out[f"test_images/mse_bound@{thr:.2f}"] == pytest.approx(bound)
        assert out[f"test_images/mse_above_bound@{thr:.2f}"] == pytest.approx(
            np.mean(mse > bound))
        assert out[f"test_images/classifier_acc@{thr:.2f}"] == pytest.approx(np.mean(
            [p.argmax() == y and p.max() >= thr for p, y in zip(probs, labels, strict=True)]))
    assert out["test_images/mse_median"] == pytest.approx(np.median(mse), rel=1e-5)


def _fooling_run(root, name, **extra):
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({
        "model": {"_target_": "overgen.models.DAEClassifier"},
        "callbacks": {"fooling": {"digits": [0, 1], "trials_per_digit": 2,
                                  "thresholds": [0.5, 0.99]}}}), run / ".hydra" / "config.yaml")
    metrics = {"run/model": "dae_sym", "run/epochs": 10, "fooling/rate@0.99": 0.0, **extra}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_check_reads_a_resumed_runs_checkpoint_and_the_summary_takes_the_newest(
        tmp_path, monkeypatch):
    model = _model()
    loaded = []
    monkeypatch.setattr(fooling_check.overgen, "load",
                        lambda path: loaded.append(path) or model)
    old = _fooling_run(tmp_path, "a")
    run = _fooling_run(tmp_path, "b", **{"run/resumed_from": str(old / "last.ckpt")})
    np.save(run / "fooling_images.npy", np.random.rand(4, 784).astype(np.float16))
    result = fooling_check.check(run, torch.rand(5, 1, 28, 28), torch.arange(5))
    assert loaded == [str(old / "last.ckpt")]  # the run wrote no checkpoint of its own
    cnn = _fooling_run(tmp_path, "cnn")  # no checkpoint anywhere: skipped from its config
    OmegaConf.save(OmegaConf.create({"model": {"_target_": "overgen.models.Classifier"}}),
                   cnn / ".hydra" / "config.yaml")
    assert fooling_check.check(cnn, torch.rand(5, 1, 28, 28), torch.arange(5)) is None
    assert len(loaded) == 1
    assert result["fooling_images/images"] == 4 and result["test_images/images"] == 5
    (old / "fooling_check.json").write_text(json.dumps({"test_images/images": 1}))
    (run / "fooling_check.json").write_text(json.dumps(result))
    runs = [{"dir": str(d), **json.loads((d / "metrics.json").read_text())} for d in (old, run)]
    s = summarize(runs)
    assert s["table1/dae_sym/test_images/images"] == 5  # the newest run's check
    assert s["table1/dae_sym/fooling_images/images"] == 4


def test_thresholding_why_gives_the_share_above_the_bound():
    s = {"table1/dae_sym/acc": 0.99, "table1/dae_sym/acc@0.90": 0.97,
         "table1/dae_sym/acc@0.99": 0.89, "table1/dae_sym/mse": 0.0015,
         "table1/dae_sym/alpha@0.99": 3, "table1/dae_sym/test_images/mse_above_bound@0.99": 0.081}
    (row,) = [r for r in claims.table(s)[1] if r[0].startswith("Table I: thresholding")]
    assert row[3] == "partly"
    assert row[5].endswith("the test MSE is 0.0015, and 8.1% of the test images are above "
                           "that bound")
    s["table1/dae_sym/test_images/classifier_acc@0.99"] = 0.95  # 99 - 95 = 4, 95 - 89 = 6
    (row,) = [r for r in claims.table(s)[1] if r[0].startswith("Table I: thresholding")]
    assert row[5].endswith("that bound; the classifier alone (y >= 0.99, without c(x)) keeps "
                           "95.0%: its confidence costs 4.0 points, the error factor 6.0 more")


def test_cli_refuses_a_run_without_fooling_images(tmp_path, capsys):
    run = _fooling_run(tmp_path, "c")
    assert fooling_check.main([str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run_dirs={run}: no fooling_images.npy") and "\n" not in err


def test_cli_says_which_checkpoint_is_missing_in_one_line(tmp_path, mnist_dir, capsys):
    run = _fooling_run(tmp_path, "d")  # a dAE run without a checkpoint (a fresh clone)
    np.save(run / "fooling_images.npy", np.random.rand(4, 784).astype(np.float16))
    assert fooling_check.main([str(run), "--data-dir", str(mnist_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run_dirs={run}: ") and "\n" not in err
    assert not (run / "fooling_check.json").exists()
