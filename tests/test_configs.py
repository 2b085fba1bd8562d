"""Every config file composes and builds: each model, data set, evaluation, logger, trainer
and experiment, as a user would select it."""

from __future__ import annotations

import pytest
from helpers import CONF, compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf

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


def _debug_settings(name: str) -> dict:
    """The dotted keys ``conf/debug/<name>.yaml`` sets, read from the files themselves: its
    own and those of the debug files it includes; ``logger`` for its logger override."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "debug" / f"{name}.yaml"))
    settings = {}
    for entry in raw.pop("defaults", []):
        if isinstance(entry, str):
            settings.update(_debug_settings(entry))
        else:
            settings.update({k.removeprefix("override /"): v for k, v in entry.items()})
    todo = [("", raw)]
    while todo:
        prefix, node = todo.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                todo.append((f"{prefix}{key}.", value))
            else:
                settings[prefix + key] = value
    return settings


@pytest.mark.parametrize("config", ["train", "evaluate"])
@pytest.mark.parametrize("debug", _names("debug"))
def test_every_debug_file_wins_over_the_rest_and_builds(config, debug, tmp_path):
    """``debug=NAME`` composes last (over experiment=rings2d's 50,000 steps and train.yaml's
    W&B logger), builds, and still yields to the command line."""
    base = ["experiment=rings2d"] if config == "train" else ["ckpt_path=x"]
    cfg = compose_cfg(config, [*base, f"debug={debug}"], tmp_path)
    settings = _debug_settings(debug)
    assert list(cfg.logger) == [settings.pop("logger")]
    assert {key: OmegaConf.select(cfg, key) for key in settings} == settings
    assert _instantiate_all(cfg.logger, "logger")
    trainer = instantiate(cfg.trainer, logger=False)
    assert trainer.max_steps == cfg.trainer.max_steps
    again = compose_cfg(config, [*base, f"debug={debug}", "trainer.max_steps=7"], tmp_path)
    assert again.trainer.max_steps == 7
