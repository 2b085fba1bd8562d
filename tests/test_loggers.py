"""What the loggers receive: the whole config, choices, overrides and train classes; the W&B
run's name, group and tags; the ROC and open-set tables; evaluate attaching to the training's
W&B run. W&B runs offline (conftest) and is read back from the live ``wandb.run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import wandb
import yaml
from helpers import DATA_DIR, TINY, compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf

from overgen.tasks import evaluate, train
from overgen.utils.loggers import run_name

FAST = [*TINY, "trainer.max_steps=20", "trainer.limit_test_batches=2", "data.batch_size=32"]


def _finished_config() -> dict:
    """The live W&B run's name, group, tags, id, config and summary (the last logged
    metrics); then the run is finished."""
    run = wandb.run
    seen = {"name": run.name, "group": run.group, "tags": list(run.tags), "id": run.id,
            "config": dict(run.config), "summary": dict(run.summary),
            "dir": Path(run.dir).parent}
    wandb.finish()
    return seen


def _table(run_dir: Path, key: str) -> dict:
    found = sorted((run_dir / "files" / "media" / "table").glob(f"{key}_*.table.json"))
    assert found, f"no W&B table {key} under {run_dir}"
    return json.loads(found[0].read_text())


@pytest.fixture(scope="module")
def openset_run(tmp_path_factory):
    if not (Path(DATA_DIR) / "MNIST").exists():
        pytest.skip(f"MNIST not found under {DATA_DIR}")
    out = tmp_path_factory.mktemp("openset")
    torch.manual_seed(0)
    cfg = compose_cfg("train", ["experiment=openset", "model=cnn", "+known=3", "data.subset=1",
                                "logger=wandb", *FAST], out)
    metrics = train(cfg)
    return out, metrics, _finished_config()


@pytest.mark.e2e
def test_every_logger_receives_the_whole_config(openset_run):
    out, metrics, seen = openset_run
    hparams = yaml.safe_load((out / "csv" / "hparams.yaml").read_text())
    for params in (seen["config"], hparams):
        assert params["choices"]["model"] == "cnn"
        assert params["choices"]["data"] == "mnist_openset"
        assert "+known=3" in params["overrides"] and "data.subset=1" in params["overrides"]
        assert params["train_classes"] == metrics["run/train_classes"]
        assert len(params["train_classes"]) == 3
        assert params["data"]["subset"] == 1 and params["data"]["known"] == 3
        assert params["trainer"]["max_steps"] == 20 and params["seed"] == 12345
        assert params["task_name"] == "openset"
        assert params["paths"]["output_dir"] == str(out)  # resolved, not ${hydra:...}
        assert params["omega"] == 1  # the LightningModule's own arguments stay


def _csv_columns(out: Path) -> set[str]:
    return set((out / "csv" / "metrics.csv").read_text().splitlines()[0].split(","))


@pytest.mark.e2e
def test_settings_reach_the_loggers_as_config_not_as_metrics(openset_run):
    out, metrics, seen = openset_run
    settings = {"openset/known", "openset/threshold", "openset/openness"}
    for logged in (_csv_columns(out), set(seen["summary"])):
        assert {"openset/f1", "openset/precision", "openset/recall"} <= logged
        assert not logged & settings
    hparams = yaml.safe_load((out / "csv" / "hparams.yaml").read_text())
    for params in (seen["config"], hparams):
        assert params["callbacks"]["openset"]["threshold"] == metrics["openset/threshold"]
        assert len(params["train_classes"]) == metrics["openset/known"] == 3
    assert metrics["openset/threshold"] == 0.99  # metrics.json keeps them for the report


@pytest.mark.e2e
def test_openset_run_name_group_tags_and_point_table(openset_run):
    _, metrics, seen = openset_run
    assert (seen["name"], seen["group"], seen["tags"]) == ("cnn-K3-s1", "openset",
                                                           ["openset", "cnn"])
    point = _table(seen["dir"], "openset/point")
    assert point["columns"] == ["known", "openness", "threshold", "f1", "precision", "recall"]
    assert point["data"][0][0] == 3
    assert point["data"][0][3] == pytest.approx(metrics["openset/f1"])


@pytest.mark.e2e
def test_evaluate_attaches_to_the_training_run(openset_run, tmp_path):
    out, _, trained = openset_run
    ckpt = out / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["overgen"]["wandb_id"] == trained["id"]
    cfg = compose_cfg("evaluate", [f"ckpt_path={ckpt}", *TINY, "logger=wandb",
                                   "trainer.limit_test_batches=1"], tmp_path)
    evaluate(cfg)
    seen = _finished_config()
    assert seen["id"] == trained["id"]
    assert (seen["name"], seen["group"]) == ("cnn-K3-s1", "openset")
    assert seen["config"]["evaluate"]["ckpt_path"] == str(ckpt)
    assert seen["config"]["evaluate"]["trainer"]["limit_test_batches"] == 1


@pytest.mark.e2e
def test_oneclass_run_name_tags_and_roc_table(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=ocsvm", "data.digit=7",
                                "model.max_train=200", "logger=wandb", *FAST], tmp_path)
    metrics = train(cfg)
    seen = _finished_config()
    assert (seen["name"], seen["group"], seen["tags"]) == ("ocsvm-d7", "oneclass",
                                                           ["oneclass", "ocsvm"])
    assert seen["config"]["train_classes"] == [7] and seen["config"]["data"]["digit"] == 7
    roc = json.loads((tmp_path / "roc.json").read_text())
    table = _table(seen["dir"], "oneclass/roc")
    assert table["columns"] == ["fpr", "tpr"]
    assert [row[0] for row in table["data"]] == pytest.approx(roc["fpr"])
    assert [row[1] for row in table["data"]] == pytest.approx(roc["tpr"])
    assert metrics["oneclass/roc_file"] == "roc.json"
    for logged in (_csv_columns(tmp_path), set(seen["summary"])):
        assert "oneclass/auroc" in logged and "oneclass/digit" not in logged
    hparams = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    assert hparams["data"]["digit"] == hparams["train_classes"][0] == metrics["oneclass/digit"]


def test_wandb_run_starts_without_the_anonymous_warning(tmp_path, monkeypatch):
    """Lightning passes ``anonymous=None``, on which wandb warns; overgen's logger does not."""
    warned = []
    monkeypatch.setattr(wandb, "termwarn", lambda message, *a, **k: warned.append(message))
    cfg = compose_cfg("train", ["logger=wandb", *FAST], tmp_path)
    logger = instantiate(cfg.logger.wandb)
    assert logger.experiment.id == wandb.run.id  # wandb.init ran
    wandb.finish()
    assert not [m for m in warned if "anonymous" in m]


@pytest.mark.parametrize(("choices", "data", "classes", "name"), [
    ({"model": "dae_sym", "data": "mnist_openset"}, {"subset": 1, "known_classes": None},
     [2, 5, 8], "dae_sym-K3-s1"),
    ({"model": "cool", "data": "mnist_openset"}, {"subset": 0, "known_classes": [0, 3]},
     [0, 3], "cool-K2-c03"),
    ({"model": "ocsvm", "data": "mnist_oneclass"}, {"digit": 7}, [7], "ocsvm-d7"),
    ({"model": "cnn", "data": "mnist"}, {}, list(range(10)), "cnn"),
    ({"model": "dae_mlp", "data": "rings2d"}, {}, [0, 1, 2], "dae_mlp-rings2d"),
])
def test_run_name_from_choices(choices, data, classes, name):
    assert run_name(choices, OmegaConf.create(data), classes) == name
