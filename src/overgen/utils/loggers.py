"""What every logger of a run receives (lightning-hydra-template's ``log_hyperparameters``):
the resolved composed config, the group choices, the job's overrides and the train classes;
the W&B run's name, tags and group; and, for W&B only, the 1-class ROC and the open-set
point as tables. ``WandbLogger``: Lightning's, minus a warning no user can act on."""

from __future__ import annotations

import json
import os
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import Logger
from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger

OPENSET_COLUMNS = ("known", "openness", "threshold", "f1", "precision", "recall")


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` (``logger=wandb``) without ``anonymous=None``: Lightning
    passes it to ``wandb.init`` on every run, and wandb warns on every run that "the
    anonymous setting has no effect" (wandb/wandb#10909), a notice no user can act on.
    ``anonymous=True`` is passed on as given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)


def run_name(choices: dict[str, Any], data: DictConfig, train_classes: list[int]) -> str:
    """A run's name from its choices: ``dae_sym-K3-s1`` (open set, K known digits of subset
    s; ``-c03`` for named digits), ``ocsvm-d7`` (1-class digit), ``dae_mlp-rings2d``,
    ``cnn`` (ten-digit MNIST)."""
    model, kind = choices.get("model") or "model", choices.get("data") or "data"
    if kind == "mnist_openset":
        named = data.get("known_classes") is not None
        part = f"c{''.join(map(str, train_classes))}" if named else f"s{data.get('subset')}"
        return f"{model}-K{len(train_classes)}-{part}"
    if kind == "mnist_oneclass":
        return f"{model}-d{train_classes[0]}"
    return model if kind == "mnist" else f"{model}-{kind}"


def name_wandb_run(cfg: DictConfig, task: str, choices: dict[str, Any],
                   train_classes: list[int]) -> None:
    """Set ``logger.wandb``'s name and group (``task``) unless given, and its tags (``task``, the
    model, then the config's ``tags``) before the logger is built."""
    node = OmegaConf.select(cfg, "logger.wandb")
    if node is None:
        return
    tags = [task, choices.get("model"), *(node.get("tags") or [])]
    with open_dict(node):
        node.name = node.get("name") or run_name(choices, cfg.data, train_classes)
        node.group = node.get("group") or task
        node.tags = list(dict.fromkeys(str(t) for t in tags if t))


def hyperparameters(cfg: DictConfig, choices: dict[str, Any], overrides: list[str],
                    train_classes: list[int]) -> dict[str, Any]:
    """The resolved config's top-level keys, plus ``choices``, ``overrides`` and
    ``train_classes``."""
    return {**OmegaConf.to_container(cfg, resolve=True),
            "choices": {str(k): v for k, v in choices.items()},
            "overrides": list(overrides), "train_classes": [int(c) for c in train_classes]}


def log_hyperparameters(loggers: list[Logger], params: dict[str, Any]) -> None:
    for logger in loggers:
        logger.log_hyperparams(params)


def log_tables(loggers: list[Logger], metrics: dict[str, Any], run_dir: str) -> None:
    """W&B loggers only: ``oneclass/roc`` (fpr, tpr of ``roc.json``, with a line plot) and
    ``openset/point`` (K, openness, threshold, F, precision, recall)."""
    wandb_loggers = [lg for lg in loggers if isinstance(lg, LightningWandbLogger)]
    if not wandb_loggers:
        return
    import wandb

    roc_file = metrics.get("oneclass/roc_file")
    roc = None
    if roc_file:
        with open(os.path.join(run_dir, roc_file)) as f:
            roc = json.load(f)
    openset = [metrics.get(f"openset/{c}") for c in OPENSET_COLUMNS]
    for logger in wandb_loggers:
        if roc is not None:
            table = wandb.Table(columns=["fpr", "tpr"],
                                data=[list(p) for p in zip(roc["fpr"], roc["tpr"], strict=True)])
            title = f"ROC, digit {roc['digit']} (AUC {roc['auroc']:.3f})"
            logger.experiment.log({"oneclass/roc": table, "oneclass/roc_plot":
                                   wandb.plot.line(table, "fpr", "tpr", title=title)})
        if openset[0] is not None:
            logger.log_table("openset/point", columns=list(OPENSET_COLUMNS), data=[openset])
