"""Every config file composes and builds: each model, data set, evaluation, logger, trainer
and experiment, as a user would select it."""

from __future__ import annotations

import pytest
from helpers import CONF, compose_cfg
from hydra.utils import instantiate

from overgen.tasks import _instantiate_all

# the data each model is made for (the rings' dAE is 2-D)
DATA_FOR = {"dae_mlp": "rings2d"}


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", _names("model"))
def test_every_model_config_builds(model, tmp_path):
    data = DATA_FOR.get(model, "mnist_oneclass" if model == "ocsvm" else "mnist")
    cfg = compose_cfg("train", [f"model={model}", f"data={data}"], tmp_path)
    built = instantiate(cfg.model)
    assert built.num_classes == instantiate(cfg.data).num_classes


@pytest.mark.parametrize("experiment", _names("experiment"))
def test_every_experiment_builds(experiment, tmp_path):
    cfg = compose_cfg("train", [f"experiment={experiment}"], tmp_path)
    assert cfg.task_name == experiment
    assert instantiate(cfg.model).num_classes == instantiate(cfg.data).num_classes
    assert _instantiate_all(cfg.callbacks, "callbacks")


@pytest.mark.parametrize("group", ["callbacks", "logger", "trainer", "data"])
def test_every_file_of_a_group_builds(group, tmp_path):
    for name in _names(group):
        overrides = [f"{group}={name}"] + (["model=dae_mlp"] if name == "rings2d" else [])
        cfg = compose_cfg("train", overrides, tmp_path)
        node = cfg.get(group)
        if group in ("callbacks", "logger"):
            _instantiate_all(node, group)  # none.yaml: nothing to build
        elif group == "trainer":
            assert instantiate(node, logger=False).max_epochs == cfg.trainer.max_epochs
        else:
            assert instantiate(node).num_classes in (3, 10)
