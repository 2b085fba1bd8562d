"""``train(cfg)`` and ``evaluate(cfg)``: instantiate, fit / load, test, write ``metrics.json``."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from overgen.callbacks.evaluation import Evaluation
from overgen.callbacks.fooling import FoolingAttack
from overgen.callbacks.test_images import CountTestImages
from overgen.callbacks.thresholded import Thresholded
from overgen.checkpoints import (
    CHECKPOINT_KEY,
    ConfigInCheckpoint,
    RngStateInCheckpoint,
    load_checkpoint,
)
from overgen.errors import ConfigError, OvergenError
from overgen.outputs import (
    EVALUATE_PROGRESS_DIR,
    METRICS_FILE,
    RUN_ALPHA,
    RUN_DATA,
    RUN_EPOCHS,
    RUN_MODEL,
    RUN_RESUMED_FROM,
    RUN_STEPS,
    SIZE_LIMITS,
    SKIPPED_FILE,
    TEST_PREFIX,
    threshold_key,
)
from overgen.resume import earlier_runs_of, resume_point
from overgen.runs import completed_metrics, job_digest
from overgen.scores import CURVATURE_METHODS
from overgen.stopping import StopOnNonFiniteLoss, StopOnSignal
from overgen.test_progress import TestProgress
from overgen.utils.console import TrainingProgressBar
from overgen.utils.ddp import join_this_job
from overgen.utils.hydra_run import group_choices, is_multirun, task_overrides
from overgen.utils.io import atomic_write_json
from overgen.utils.loggers import (
    hyperparameters,
    log_hyperparameters,
    log_tables,
    name_wandb_run,
)
from overgen.utils.provenance import run_provenance
from overgen.utils.stop import Stopped

log = logging.getLogger(__name__)


def _instantiate(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)`` of the config at ``key``. A ``ValueError`` or
    ``TypeError`` from a component's constructor (a value it refuses, an argument it does
    not take) becomes a ``ConfigError`` on the innermost node that failed (Hydra's
    ``full_key``) with that node's settings, so the entry points print one line
    (``error.json`` keeps the traceback). Components that know their key raise
    ``ConfigError`` themselves, which passes through unchanged."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, OvergenError) or not isinstance(cause, (ValueError, TypeError)):
            raise
        found = re.search(rf"^full_key: {re.escape(key)}\.(\S+)$", str(e), re.MULTILINE)
        failed = OmegaConf.select(node, found.group(1)) if found else node
        settings = {k: v for k, v in OmegaConf.to_container(failed, resolve=True).items()
                    if not k.startswith("_") and not isinstance(v, (dict, list))}
        raise ConfigError(f"{key}.{found.group(1)}" if found else key, settings,
                          f"{type(cause).__name__}: {cause}") from e


def _instantiate_all(group: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of the dict-of-configs group ``key``
    (callbacks, loggers)."""
    if not group:
        return []
    return [_instantiate(c, f"{key}.{name}") for name, c in group.items()
            if isinstance(c, DictConfig) and "_target_" in c]


def _check_flags(cfg: DictConfig, *keys: str) -> None:
    """Refuse a value of ``keys`` (``resume``, ``overwrite``) other than true or false."""
    for key in keys:
        if not isinstance(cfg.get(key), bool):
            raise ConfigError(key, cfg.get(key), "true or false")


def _check_shared_keys(cfg: DictConfig) -> None:
    """The top-level keys that data and model configs read (``+known``, ``+curvature``):
    refuse one that no config of this run reads or a value no model accepts."""
    known = cfg.get("known")
    if known is not None and "known" not in (cfg.get("data") or {}):
        raise ConfigError("known", known, "the number of known digits, only with "
                          "data=mnist_openset (or experiment=openset)")
    curvature = cfg.get("curvature")
    if curvature is not None and curvature not in CURVATURE_METHODS:
        raise ConfigError("curvature", curvature, f"one of {list(CURVATURE_METHODS)}, the "
                          "curvature of every dAE of the run")


def _build(cfg: DictConfig, extra_callbacks: list[pl.Callback], task: str,
           choices: dict[str, Any]):
    """Data, model, callbacks, loggers and trainer from ``cfg``; validates before any work.
    The W&B run is named from ``choices``, grouped and tagged by ``task``."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = _instantiate(cfg.data, "data")
    model = _instantiate(cfg.model, "model")
    if getattr(model, "num_classes", None) != datamodule.num_classes:
        raise ConfigError("model.num_classes", getattr(model, "num_classes", None),
                          f"{datamodule.num_classes}, the data's number of classes")
    bar = [TrainingProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []
    callbacks = (_instantiate_all(cfg.get("callbacks"), "callbacks") + extra_callbacks
                 + bar + [StopOnSignal(), CountTestImages()])
    for cb in callbacks:
        if isinstance(cb, Thresholded):
            cb.check(model)
    if int(os.environ.get("LOCAL_RANK", 0)) == 0 and hasattr(datamodule, "prepare_data"):
        datamodule.prepare_data()
    name_wandb_run(cfg, task, choices, list(datamodule.train_classes))
    loggers = _instantiate_all(cfg.get("logger"), "logger")
    trainer = _instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    if trainer.world_size > 1:
        join_this_job()
    return datamodule, model, callbacks, trainer


def _collect_metrics(cfg: DictConfig, trainer: pl.Trainer, callbacks: list,
                     datamodule: pl.LightningDataModule, model: pl.LightningModule,
                     choices: dict[str, Any], started: float) -> dict[str, Any]:
    """Flat ``metrics.json``: every logged test metric, callback results and run facts;
    ``run/alpha@t``: the alpha the model paired with each threshold ``t`` the callbacks
    judged at (``None`` for models without one); ``run/seconds`` since ``started``
    (``time.monotonic``); the training's size limits (``run/max_steps`` ...) and the number
    of test images, so a shrunk run never reads as a full one."""
    alpha_for = getattr(model, "alpha_for", None)
    thresholds = sorted({t for cb in callbacks if isinstance(cb, Thresholded)
                         for t in cb.thresholds})
    metrics: dict[str, Any] = {
        k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(TEST_PREFIX)
    }
    for cb in callbacks:
        metrics.update(getattr(cb, "results", {}) or {})
    metrics.update({
        RUN_MODEL: choices.get("model"),
        RUN_DATA: choices.get("data"),
        "run/seed": int(cfg.seed),
        RUN_EPOCHS: int(trainer.current_epoch),
        RUN_STEPS: int(trainer.global_step),
        "run/curvature": OmegaConf.select(cfg, "model.curvature"),
        **{f"run/{k}": OmegaConf.select(cfg, f"model.{k}") for k in ("sigma", "alpha", "beta",
                                                                     "lambda_l2", "probes")},
        **{threshold_key(RUN_ALPHA, t): alpha_for(t) if alpha_for else None
           for t in thresholds},
        "run/overrides": task_overrides(),
        "run/train_classes": list(datamodule.train_classes),
        **{f"run/{k}": OmegaConf.select(cfg, f"trainer.{k}") for k in SIZE_LIMITS},
        "run/test_images": next(cb.count for cb in callbacks if isinstance(cb, CountTestImages)),
        "run/seconds": time.monotonic() - started,
        **run_provenance(),
    })
    return metrics


def _write_metrics(cfg: DictConfig, trainer: pl.Trainer, metrics: dict[str, Any]) -> None:
    if trainer.is_global_zero:
        path = os.path.join(cfg.paths.output_dir, METRICS_FILE)
        atomic_write_json(path, metrics)
        log.info("metrics written to %s", path)


def _set_wandb_id(cfg: DictConfig, resume_id: str | None) -> str | None:
    """Fix the W&B run id up front (stored in checkpoints); a resumed run reuses its id."""
    node = OmegaConf.select(cfg, "logger.wandb")
    if node is None:
        return None
    with open_dict(node):
        node.id = resume_id or node.get("id") or uuid.uuid4().hex[:8]
        if resume_id:
            node.resume = "allow"
    return node.id


def _save_fitted(trainer: pl.Trainer, model: pl.LightningModule, dirpath: str) -> None:
    """``{dirpath}/last.ckpt`` of a model fitted without a training loop (its fitted state
    in its ``state_dict``), written by the trainer like any checkpoint (the run's config
    included), so ``evaluate.py`` and ``overgen.load`` read it like any other."""
    trainer.strategy.connect(model)
    trainer.save_checkpoint(os.path.join(dirpath, "last.ckpt"))


def _tested_checkpoint(cfg: DictConfig, ckpt_path: str | None) -> str | None:
    """The ``last.ckpt`` holding the weights under test: this run's, else the one it
    resumed from (a finished training, which ``fit`` skipped); None without one."""
    for path in (os.path.join(cfg.checkpoint.dirpath, "last.ckpt"), ckpt_path):
        if path and os.path.isfile(path):
            return path
    return None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit ``cfg.model`` on ``cfg.data``, test it with the evaluation callbacks, write
    ``metrics.json`` in the run dir and return the metrics.

    In a multirun, or with ``resume=true``, a job whose earlier run has a complete
    ``metrics.json`` is skipped (``overwrite=true`` runs it again). ``resume=true`` (or
    ``ckpt_path=last``) continues the newest earlier run's ``checkpoints/last.ckpt``,
    with its W&B run id; a finished training is not trained again, and the test batches
    and the fooling attack continue from what they saved beside that checkpoint.
    """
    started = time.monotonic()
    _check_flags(cfg, "resume", "overwrite")
    _check_shared_keys(cfg)
    overrides = task_overrides()
    resume = cfg.resume or cfg.ckpt_path == "last"
    earlier = (earlier_runs_of(cfg, overrides)
               if (resume or is_multirun()) and not cfg.overwrite else [])
    for run in earlier:
        done = completed_metrics(run, cfg.get("optimized_metric"))
        if done is not None:
            log.info("skipped: this job already finished in %s (overwrite=true runs it "
                     "again)", run)
            atomic_write_json(os.path.join(cfg.paths.output_dir, SKIPPED_FILE),
                              {"metrics_in": str(run)})
            return done
    ckpt_path, resume_id = resume_point(cfg, earlier) if resume else (cfg.ckpt_path, None)
    wandb_id = _set_wandb_id(cfg, resume_id)
    progress = _instantiate(cfg.test_progress, "test_progress")
    extra = [_instantiate(cfg.checkpoint, "checkpoint"), RngStateInCheckpoint(), progress,
             StopOnNonFiniteLoss(cfg.checkpoint.dirpath),
             ConfigInCheckpoint(OmegaConf.to_yaml(cfg), overrides, group_choices(), wandb_id)]
    choices = group_choices()
    datamodule, model, callbacks, trainer = _build(cfg, extra, cfg.task_name, choices)
    log_hyperparameters(trainer.loggers, hyperparameters(cfg, choices, overrides,
                                                         datamodule.train_classes))
    if hasattr(model, "fit_without_trainer"):  # e.g. scikit-learn baselines
        model.fit_without_trainer(datamodule)
        _save_fitted(trainer, model, cfg.checkpoint.dirpath)
    else:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    tested = _tested_checkpoint(cfg, ckpt_path)
    for cb in callbacks:
        if isinstance(cb, (FoolingAttack, TestProgress)) and tested:
            cb.state_dir = os.path.dirname(tested)
    try:
        trainer.test(model, datamodule=datamodule)
    except Stopped as stopped:
        if tested:
            stopped.saved = " and ".join(filter(None, [f"the trained model in {tested}",
                                                       stopped.saved]))
        raise
    metrics = _collect_metrics(cfg, trainer, callbacks, datamodule, model, choices, started)
    metrics[RUN_RESUMED_FROM] = ckpt_path
    _write_metrics(cfg, trainer, metrics)
    progress.remove()
    log_tables(trainer.loggers, metrics, cfg.paths.output_dir)
    return metrics


def _config_from_checkpoint(cfg: DictConfig, ckpt: dict[str, Any]) -> DictConfig:
    """``cfg`` with ``model``, ``data`` and ``callbacks`` from the checkpoint's run (the first
    two with the top-level key they read), unless the group was selected on the command
    line; ``++model.key=v`` style keys override."""
    saved = OmegaConf.create(ckpt[CHECKPOINT_KEY]["config"])
    choices = group_choices()
    merged = OmegaConf.to_container(cfg)
    for key in ("model", "data", "callbacks"):
        here = cfg.get(key)
        if choices.get(key) is None:
            base = saved.get(key) or {}
            merged[key] = OmegaConf.to_container(OmegaConf.merge(base, here or {}))
    for key, group in (("known", "data"), ("curvature", "model")):  # read by that group
        if choices.get(group) is None and key in saved and key not in cfg:
            merged[key] = saved[key]
    out = OmegaConf.create(merged)
    if HydraConfig.initialized():  # keep ${hydra:...} resolvable
        out.paths.output_dir = HydraConfig.get().runtime.output_dir
    return out


def evaluated_checkpoint(cfg: DictConfig) -> tuple[str]:
    """What names an ``evaluate.py`` job beside its overrides: its checkpoint's absolute
    path (``ckpt_path`` is a run-control key for ``train.py``, where it only says where to
    resume). Its lock (``runs.job_lock``) and its progress dir are named by both."""
    return (os.path.abspath(cfg.ckpt_path),)


def _evaluate_progress_dir(cfg: DictConfig) -> str:
    """Where ``evaluate.py`` keeps the finished test batches of its job (its overrides and
    checkpoint) for the same command with ``resume=true``, whatever its run dir:
    ``<log dir>/<task>/.progress/<job digest>`` (``outputs.EVALUATE_PROGRESS_DIR``)."""
    job = job_digest(task_overrides(), *evaluated_checkpoint(cfg))
    return os.path.join(cfg.paths.log_dir, cfg.task_name, EVALUATE_PROGRESS_DIR, job)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test the checkpoint ``cfg.ckpt_path`` with the evaluation callbacks and write
    ``metrics.json`` in this run's dir. With ``logger=wandb`` the results go to the
    training's W&B run (the id the checkpoint stores), its config under ``evaluate``.
    The finished test batches are saved in the job's ``_evaluate_progress_dir``;
    ``resume=true`` reads them back instead of scoring them again."""
    started = time.monotonic()
    _check_flags(cfg, "resume")
    ckpt = load_checkpoint(cfg.ckpt_path)
    saved = ckpt[CHECKPOINT_KEY]
    trained = OmegaConf.create(saved["config"])
    cfg = _config_from_checkpoint(cfg, ckpt)
    _check_shared_keys(cfg)
    _set_wandb_id(cfg, saved.get("wandb_id"))
    saved_choices = saved.get("choices") or {}
    choices = {k: v if v is not None else saved_choices.get(k) for k, v in group_choices().items()}
    task = trained.get("task_name") or cfg.task_name
    progress = _instantiate(cfg.test_progress, "test_progress")
    progress.state_dir, progress.resume = _evaluate_progress_dir(cfg), cfg.resume
    datamodule, model, callbacks, trainer = _build(cfg, [progress], task, choices)
    os.makedirs(progress.state_dir, exist_ok=True)
    log_hyperparameters(trainer.loggers, {"evaluate": {
        **hyperparameters(cfg, choices, task_overrides(), datamodule.train_classes),
        "ckpt_path": os.path.abspath(cfg.ckpt_path)}})
    model.load_state_dict(ckpt["state_dict"])
    for cb in callbacks:
        if isinstance(cb, Evaluation):
            cb.trained_steps = ckpt.get("global_step", 0)
    trainer.test(model, datamodule=datamodule)
    metrics = _collect_metrics(cfg, trainer, callbacks, datamodule, model, choices, started)
    metrics["run/ckpt_path"] = os.path.abspath(cfg.ckpt_path)
    # the training behind the numbers is the checkpoint's, not this (test-only) trainer's
    metrics[RUN_EPOCHS], metrics[RUN_STEPS] = ckpt.get("epoch", 0), ckpt.get("global_step", 0)
    metrics.update({f"run/{k}": OmegaConf.select(trained, f"trainer.{k}")
                    for k in SIZE_LIMITS if k != "limit_test_batches"})
    _write_metrics(cfg, trainer, metrics)
    progress.remove()
    with contextlib.suppress(OSError):  # the job's folder, and parents left empty by it
        os.removedirs(progress.state_dir)
    log_tables(trainer.loggers, metrics, cfg.paths.output_dir)
    return metrics
