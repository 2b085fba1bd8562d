"""The commands a newcomer types first: what they compose, what they refuse, what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, TINY, compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf

from overgen.errors import ConfigError
from overgen.tasks import train


@pytest.mark.parametrize("overrides,callbacks,metric", [
    ([], {"test_accuracy"}, "test/acc"),
    (["model=dae_sym", "data=mnist_openset", "+known=3"], {"test_accuracy", "openset"},
     "openset/f1"),
    (["data=mnist_oneclass", "data.digit=7"], {"oneclass"}, "oneclass/auroc"),
    (["model=dae_mlp", "data=rings2d"], {"test_accuracy", "rings_figure"}, "test/acc"),
])
def test_data_brings_its_evaluation(overrides, callbacks, metric, tmp_path):
    cfg = compose_cfg("train", overrides, tmp_path)
    assert set(cfg.callbacks) == callbacks and cfg.optimized_metric == metric
    assert cfg.task_name == "train"


@pytest.mark.parametrize("overrides,callbacks", [
    (["data=mnist_oneclass", "callbacks=default"], {"test_accuracy"}),
    (["data=mnist_openset", "callbacks=[default,fooling]"], {"test_accuracy", "fooling"}),
    (["experiment=openset", "callbacks=none"], set()),
])
def test_callbacks_on_the_command_line_win(overrides, callbacks, tmp_path):
    assert set(compose_cfg("train", overrides, tmp_path).callbacks) == callbacks


@pytest.mark.parametrize("experiment,its_callbacks,task,metric", [
    ("openset", "openset", "openset", "openset/f1"),
    ("oneclass", "oneclass", "oneclass", "oneclass/auroc"),
    ("fooling", "[default,fooling]", "fooling", "test/acc"),
    ("rings2d", "rings2d", "rings2d", "test/acc"),
])
def test_experiments_stay_the_presets_they_were(experiment, its_callbacks, task, metric,
                                                tmp_path):
    preset = compose_cfg("train", [f"experiment={experiment}"], tmp_path)
    assert (preset.task_name, preset.optimized_metric) == (task, metric)
    explicit = compose_cfg("train", [f"experiment={experiment}",
                                     f"callbacks={its_callbacks}"], tmp_path)
    assert OmegaConf.to_container(preset) == OmegaConf.to_container(explicit)
    # an experiment's evaluation does not follow a data set given beside it
    with_mnist = compose_cfg("train", [f"experiment={experiment}", "data=mnist"], tmp_path)
    assert with_mnist.callbacks == preset.callbacks


@pytest.mark.parametrize("overrides,message", [
    (["+known=3"], "known=3 is not allowed: the number of known digits, only with "
                   "data=mnist_openset"),
    (["data=mnist_oneclass", "+known=3"], "known=3 is not allowed"),
    (["model=dae_sym", "+curvature=newton"], "curvature='newton' is not allowed: one of"),
])
def test_shared_keys_that_would_be_ignored_or_wrong_are_refused(overrides, message, tmp_path):
    cfg = compose_cfg("train", [*overrides, *TINY], tmp_path)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not list(tmp_path.iterdir())  # before any work


@pytest.mark.parametrize("model", ["cnn", "cool", "dae_sym", "dae_oneclass"])
def test_one_curvature_override_for_a_mixed_sweep(model, tmp_path):
    cfg = compose_cfg("train", ["experiment=openset", f"model={model}",
                                "+curvature=hutchinson"], tmp_path)
    built = instantiate(cfg.model)  # cnn and cool ignore the key
    expected = "hutchinson" if model.startswith("dae") else None
    assert OmegaConf.select(cfg, "model.curvature") == expected
    assert getattr(built, "curvature_method", None) == expected


def test_model_curvature_still_sets_a_dae_alone(tmp_path):
    cfg = compose_cfg("train", ["model=dae_sym", "model.curvature=hutchinson"], tmp_path)
    assert cfg.model.curvature == "hutchinson"
    assert compose_cfg("train", ["model=dae_sym"], tmp_path).model.curvature == "exact"


@pytest.mark.e2e
@pytest.mark.parametrize("script,says", [
    ("train.py", ["experiment=", "+known=K", "+curvature=M", "evaluate.py", "overgen.report",
                  "overgen.load", "logs/<task>/runs/", "experiment: fooling, oneclass",
                  "debug=tiny"]),
    ("evaluate.py", ["ckpt_path=", "++model.curvature"]),
])
def test_help_answers_without_loading_torch(script, says, tmp_path):
    proc = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / script), "--help"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for text in says:
        assert text in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    heavy = {name for name in imported
             if name.split(".")[0] in ("torch", "pytorch_lightning", "lightning", "overgen")}
    assert imported and not heavy


# what Lightning, torch and the project's own config used to print on every run
NOISE = ["LeafSpec", "litlogger", "torch.jit.script", "100% of the batches",
         "across ranks is zero", "validation_step"]


@pytest.mark.e2e
def test_oneclass_data_reports_auroc_on_a_quiet_console(tmp_path, mnist_dir):
    env = {**os.environ, "OVERGEN_LOG_DIR": str(tmp_path / "logs")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "data=mnist_oneclass", "data.digit=7", *TINY,
         "trainer.max_steps=20", "trainer.limit_test_batches=2", "data.batch_size=32"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = (tmp_path / "logs").rglob("metrics.json")
    metrics = json.loads(path.read_text())
    assert 0.0 <= metrics["oneclass/auroc"] <= 1.0 and metrics["oneclass/digit"] == 7
    assert "test/acc" not in metrics
    for text in NOISE:
        assert text not in proc.stderr, text
