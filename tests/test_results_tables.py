"""The results tables: the ablation grouped by setting, the flat summary, the gamma check."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from overgen.report.ablation import main, setting
from overgen.report.gamma_check import gamma_stats


def _run(root, name, metrics, model=None, epochs=3):
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    cfg = {"trainer": {"max_epochs": epochs}, "model": model or {}}
    OmegaConf.save(OmegaConf.create(cfg), run / ".hydra" / "config.yaml")
    (run / "metrics.json").write_text(json.dumps({"run/epochs": epochs, **metrics}))
    return run


def _dae(rec=1.0, l2=10.0, unpool="switches", inp="noisy"):
    return {"lambda_rec": rec, "lambda_l2": l2, "network": {"unpool": unpool},
            "classifier_input": inp}


def test_setting_reads_the_composed_config(tmp_path):
    run = _run(tmp_path, "a", {"run/model": "dae_oneclass"}, _dae(rec=1 / 784, l2=1e-4))
    assert setting({"dir": str(run), "run/model": "dae_oneclass"}) == (
        "dae_oneclass", "mean/784", "0.0001", "switches", "noisy", 3)
    base = _run(tmp_path, "b", {"run/model": "ocsvm"}, {"nu": 0.1}, epochs=0)
    assert setting({"dir": str(base), "run/model": "ocsvm"}) == ("ocsvm", "-", "-", "-", "-", 0)


def test_tables_average_per_setting(tmp_path):
    oc = {"run/model": "dae_oneclass"}
    for i, (digit, auc, rec) in enumerate([(0, 0.8, 1.0), (1, 0.6, 1.0), (8, 0.5, 1.0),
                                           (0, 0.9, 1 / 784), (1, 0.7, 1.0)]):  # 1: two seeds
        _run(tmp_path, f"oc{i}", {**oc, "oneclass/digit": digit, "oneclass/auroc": auc,
                                  "test/mse": 0.01}, _dae(rec=rec))
    # the other unpooling on all ten digits: AUROC 0.5 + d / 20, panel (0, 1, 8): 0.5/0.55/0.9
    for d in range(10):
        _run(tmp_path, f"ten{d}", {**oc, "oneclass/digit": d, "oneclass/auroc": 0.5 + d / 20},
             _dae(unpool="nearest"), epochs=10)
    os_ = {"run/model": "dae_sym", "run/data": "mnist_openset"}
    for i, (k, f1) in enumerate([(3, 0.5), (3, 0.7), (6, 0.9)]):
        _run(tmp_path, f"os{i}", {**os_, "openset/known": k, "openset/f1": f1}, _dae(l2=0))
    _run(tmp_path, "mn", {"run/model": "dae_sym", "run/data": "mnist", "test/acc": 0.99,
                          "test/acc@0.90": 0.95, "test/acc@0.99": 0.7, "test/mse": 0.002},
         _dae(l2=0))
    _run(tmp_path, "svm", {"run/model": "ocsvm", "oneclass/digit": 0, "oneclass/auroc": 0.9},
         {"nu": 0.1}, epochs=0)
    out, summary_file = tmp_path / "ablation.md", tmp_path / "summary.json"
    assert main([str(tmp_path), "--out", str(out), "--summary", str(summary_file)]) == 0
    summary = json.loads(summary_file.read_text())
    sum10 = "ablation/oneclass/dae_oneclass,loss=sum,l2=10,unpool=switches,input=noisy,epochs=3"
    assert summary[f"{sum10}/auroc/0"] == 0.8
    assert summary[f"{sum10}/auroc/1"] == pytest.approx(0.65)
    assert summary[f"{sum10}/auroc_mean"] == pytest.approx((0.8 + 0.65 + 0.5) / 3)
    assert f"{sum10}/auroc_mean10" not in summary
    mean10 = sum10.replace("loss=sum", "loss=mean/784")
    assert f"{mean10}/auroc_mean" not in summary  # digits 1 and 8 missing: no panel mean
    near = sum10.replace("switches", "nearest").replace("epochs=3", "epochs=10")
    assert summary[f"{near}/auroc_mean"] == pytest.approx((0.5 + 0.55 + 0.9) / 3)
    assert summary[f"{near}/auroc_mean10"] == pytest.approx(0.725)  # 0.5 + 4.5 / 20
    assert summary[f"{near}/auroc/9"] == pytest.approx(0.95)
    sym = "ablation/openset/dae_sym,loss=sum,l2=0,unpool=switches,input=noisy,epochs=3"
    assert summary[f"{sym}/f1_k3"] == pytest.approx(0.6)
    assert summary[f"{sym}/f1_k6"] == pytest.approx(0.9)
    assert summary[f"{sym}/acc@0.99"] == pytest.approx(0.7)
    text = out.read_text()
    assert "epochs completed: 3, 10 (and 0: the OC-SVM is fitted, not trained)." in text
    assert ("| dae_oneclass | mean/784 | 10 | switches | noisy | 3 | 0.900 | – | – | 0.900 [1] | "
            "– |") in text
    assert "| 0.800 | 0.650 ± 0.050 (n=2) | 0.500 | 0.650 | – |" in text
    assert "| nearest | noisy | 10 | 0.500 | 0.550 | 0.900 | 0.650 | 0.725 |" in text
    assert "0.600 (n=2) | 0.900 (n=1) | – | 0.990 | 0.950 | 0.700 | 0.0020 |" in text


def test_gamma_stats_counts_positive_curvature():
    stats = gamma_stats(torch.tensor([-0.99, -0.5, 0.0, 0.25]))
    assert stats == {"images": 4, "positive": 1, "min": pytest.approx(-0.99), "max": 0.25,
                     "mean": pytest.approx(-0.31)}


def test_summary_keys_and_values(tmp_path):
    from overgen.report.summary import main as summary_main

    runs = [
        {"run/model": "cnn", "run/epochs": 10, "test/acc": 0.99, "fooling/rate@0.90": 1.0,
         "fooling/steps@0.90": 60.0, "fooling/lr": 1e-5},
        {"run/model": "cnn", "run/epochs": 10, "test/acc": 0.98, "fooling/rate@0.90": 1.0,
         "fooling/steps@0.90": 3.0, "fooling/lr": 1e-3},
        *({"run/model": "dae_sym", "run/epochs": 3, "openset/known": 3, "openset/f1": f,
           "openset/precision": p, "openset/recall": r} for f, p, r in ((0.5, 1.0, 0.4),
                                                                         (0.7, 0.9, 0.6))),
        *({"run/model": "ocsvm", "run/epochs": 0, "oneclass/digit": d, "oneclass/auroc": a}
          for d, a in ((0, 0.9), (1, 0.7), (1, 0.8))),
        *({"run/model": "dae_oneclass", "run/epochs": 10, "oneclass/digit": d,
           "oneclass/auroc": 0.6, "oneclass/mahalanobis/auroc": m}
          for d, m in ((0, 0.9), (1, 0.6), (1, 0.8))),
    ]
    for i, metrics in enumerate(runs):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "ablation.json").write_text(json.dumps({"ablation/x/auroc_mean": 0.5}))
    out = tmp_path / "summary.json"
    assert summary_main([str(tmp_path), "--ablation", str(tmp_path / "ablation.json"),
                         "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["table1/cnn/acc"] == 0.99 and s["table1/cnn/steps@0.90"] == 60.0
    assert s["table1/cnn@lr0.001/steps@0.90"] == 3.0 and s["table1/cnn/epochs"] == "10"
    assert s["fig4/dae_sym/k3/f_mean"] == pytest.approx(0.6)
    assert s["fig4/dae_sym/k3/f_std"] == pytest.approx(0.1) and s["fig4/dae_sym/k3/n"] == 2
    assert s["fig4/dae_sym/k3/precision_mean"] == pytest.approx(0.95)
    assert s["fig4/dae_sym/k3/recall_mean"] == pytest.approx(0.5)
    assert s["fig5/ocsvm/auroc/1"] == pytest.approx(0.75)
    assert s["fig5/ocsvm/auroc_mean"] == pytest.approx(0.825) and s["fig5/ocsvm/digits"] == 2
    assert s["fig5/ocsvm/epochs"] == "0" and s["ablation/x/auroc_mean"] == 0.5
    # post-hoc scores of the same runs, averaged per digit first: (0.9 + 0.7) / 2
    assert s["fig5/dae_oneclass/mahalanobis/auroc_mean"] == pytest.approx(0.8)
    assert "fig5/dae_oneclass/msp/auroc_mean" not in s and "fig5/ocsvm/msp/auroc_mean" not in s


@pytest.mark.parametrize("module", ["ablation", "summary"])
def test_missing_run_dir_is_named_and_nothing_is_written(module, tmp_path, capsys):
    import importlib

    main_ = importlib.import_module(f"overgen.report.{module}").main
    out = tmp_path / "out.json"
    assert main_([str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"overgen.report.{module}: no such directory: "
                                       f"{tmp_path / 'nope'}\n")
    assert not out.exists()
