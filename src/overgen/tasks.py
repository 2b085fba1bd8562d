"""``train(cfg)`` and ``evaluate(cfg)``: instantiate, fit / load, test, write ``metrics.json``."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from overgen.callbacks.checkpoint_config import CHECKPOINT_KEY, ConfigInCheckpoint
from overgen.errors import CheckpointError, ConfigError
from overgen.utils.io import atomic_write_json

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(c) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c]


def _build(cfg: DictConfig, extra_callbacks: list[pl.Callback]):
    """Data, model, callbacks, loggers and trainer from ``cfg``; validates before any work."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    if getattr(model, "num_classes", None) != datamodule.num_classes:
        raise ConfigError("model.num_classes", getattr(model, "num_classes", None),
                          f"{datamodule.num_classes}, the data's number of classes")
    if int(os.environ.get("LOCAL_RANK", 0)) == 0 and hasattr(datamodule, "prepare_data"):
        datamodule.prepare_data()
    callbacks = _instantiate_all(cfg.get("callbacks")) + extra_callbacks
    loggers = _instantiate_all(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, callbacks, trainer


def _choices() -> dict[str, Any]:
    """Hydra's config group choices of this run (``{"model": "dae_sym", ...}``)."""
    return dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}


def _collect_metrics(cfg: DictConfig, trainer: pl.Trainer, callbacks: list,
                     datamodule: pl.LightningDataModule,
                     choices: dict[str, Any]) -> dict[str, Any]:
    """Flat ``metrics.json``: every logged test metric, callback results and run facts."""
    metrics: dict[str, Any] = {
        k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")
    }
    for cb in callbacks:
        metrics.update(getattr(cb, "results", {}) or {})
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    metrics.update({
        "run/model": choices.get("model"),
        "run/data": choices.get("data"),
        "run/seed": int(cfg.seed),
        "run/epochs": int(trainer.current_epoch),
        "run/steps": int(trainer.global_step),
        "run/curvature": OmegaConf.select(cfg, "model.curvature"),
        **{f"run/{k}": OmegaConf.select(cfg, f"model.{k}") for k in ("sigma", "alpha", "beta",
                                                                     "lambda_l2", "probes")},
        "run/overrides": overrides,
        "run/train_classes": list(datamodule.train_classes),
    })
    return metrics


def _write_metrics(cfg: DictConfig, trainer: pl.Trainer, metrics: dict[str, Any]) -> None:
    if trainer.is_global_zero:
        path = os.path.join(cfg.paths.output_dir, METRICS_FILE)
        atomic_write_json(path, metrics)
        log.info("metrics written to %s", path)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit ``cfg.model`` on ``cfg.data``, test it with the evaluation callbacks, write
    ``metrics.json`` in the run dir and return the metrics."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    saved = ConfigInCheckpoint(OmegaConf.to_yaml(cfg), overrides, _choices())
    datamodule, model, callbacks, trainer = _build(cfg, [instantiate(cfg.checkpoint), saved])
    if hasattr(model, "fit_without_trainer"):  # e.g. scikit-learn baselines
        model.fit_without_trainer(datamodule)
    else:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    trainer.test(model, datamodule=datamodule)
    metrics = _collect_metrics(cfg, trainer, callbacks, datamodule, _choices())
    _write_metrics(cfg, trainer, metrics)
    return metrics


def load_checkpoint(path: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with clear errors for missing or foreign files."""
    if not os.path.isfile(path):
        raise CheckpointError(f"ckpt_path={path!r} does not exist (expected a .ckpt file "
                              "written by train.py, e.g. <run dir>/checkpoints/last.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise CheckpointError(f"ckpt_path={path!r} is not a readable checkpoint: "
                              f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or CHECKPOINT_KEY not in ckpt:
        raise CheckpointError(f"ckpt_path={path!r} is not an overgen checkpoint "
                              "(no state_dict or saved run config)")
    return ckpt


def _config_from_checkpoint(cfg: DictConfig, ckpt: dict[str, Any]) -> DictConfig:
    """``cfg`` with ``model``, ``data`` and ``callbacks`` from the checkpoint's run, unless
    the group was selected on the command line; ``++model.key=v`` style keys override."""
    saved = OmegaConf.create(ckpt[CHECKPOINT_KEY]["config"])
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    merged = OmegaConf.to_container(cfg)
    for key in ("model", "data", "callbacks"):
        here = cfg.get(key)
        if choices.get(key) is None:
            base = saved.get(key) or {}
            merged[key] = OmegaConf.to_container(OmegaConf.merge(base, here or {}))
    if "known" in saved and "known" not in cfg:
        merged["known"] = saved.known
    out = OmegaConf.create(merged)
    if HydraConfig.initialized():  # keep ${hydra:...} resolvable
        out.paths.output_dir = HydraConfig.get().runtime.output_dir
    return out


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test the checkpoint ``cfg.ckpt_path`` with the evaluation callbacks and write
    ``metrics.json`` in this run's dir."""
    ckpt = load_checkpoint(cfg.ckpt_path)
    cfg = _config_from_checkpoint(cfg, ckpt)
    datamodule, model, callbacks, trainer = _build(cfg, [])
    model.load_state_dict(ckpt["state_dict"])
    trainer.test(model, datamodule=datamodule)
    saved_choices = ckpt[CHECKPOINT_KEY].get("choices") or {}
    choices = {k: v if v is not None else saved_choices.get(k) for k, v in _choices().items()}
    metrics = _collect_metrics(cfg, trainer, callbacks, datamodule, choices)
    metrics["run/ckpt_path"] = os.path.abspath(cfg.ckpt_path)
    _write_metrics(cfg, trainer, metrics)
    return metrics
