"""An evaluation that keeps its progress: the scores of the finished test batches, saved
beside the tested checkpoint, so ``resume=true`` after a stop or a kill during testing
scores only the batches whose scores were not saved."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pytorch_lightning as pl
import torch

from overgen.attacks.state import weights_digest
from overgen.errors import ConfigError
from overgen.models.base import ScoringModule, TestOutputs
from overgen.outputs import test_progress_file
from overgen.utils.io import atomic_torch_save
from overgen.utils.stop import Stopped

log = logging.getLogger(__name__)


class TestProgress(pl.Callback):
    """Each rank saves the ``TestOutputs`` of its finished test batches to
    ``<state_dir>/test_progress.pt`` (``test_progress.rank<r>.pt`` on rank ``r``) at most
    every ``save_every_s`` seconds (0: after every batch), after the last one and when
    stopped (SIGTERM / SIGINT); ``train.py`` sets ``state_dir`` to the folder of the
    checkpoint it tests, ``evaluate.py`` to a folder of its job (None: nothing is saved).
    A later test of the same weights (``weights_digest``), with the same scores asked for,
    number of test batches and of ranks, hands the saved batches to the model
    (``ScoringModule.scored``), which returns them unscored; saves of other weights or
    settings are ignored with a warning, and with ``resume`` false any save (it is
    overwritten). ``remove()`` deletes the file once ``metrics.json`` is written."""

    __test__ = False  # not a pytest test class

    def __init__(self, save_every_s: float = 30.0) -> None:
        if isinstance(save_every_s, bool) or not isinstance(save_every_s, (int, float)) \
                or save_every_s < 0:
            raise ConfigError("test_progress.save_every_s", save_every_s,
                              "a non-negative number of seconds (0: after every test batch)")
        self.save_every_s = float(save_every_s)
        self.state_dir: str | None = None
        self.resume = True  # read the batches an earlier test saved in state_dir
        self.path: str | None = None
        self.settings: dict[str, Any] = {}
        self.batches: dict[int, dict[str, Any]] = {}  # finished batches as TestOutputs fields
        self.read = 0  # of them, read from an earlier run's file
        self.saved_at = 0.0

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: ScoringModule) -> None:
        if self.state_dir is None:
            return
        self.path = os.path.join(self.state_dir, test_progress_file(trainer.global_rank))
        self.settings = {
            "weights": weights_digest(pl_module), "world_size": trainer.world_size,
            "test_batches": str(trainer.num_test_batches),
            "score_needs": {str(t): full for t, full in pl_module.score_needs.items()}}
        self.batches = self._load() if self.resume else {}
        self.read = len(self.batches)
        pl_module.scored = {i: TestOutputs(**fields) for i, fields in self.batches.items()}
        if self.batches:
            log.info("test: continuing from %s: %d test batches scored already", self.path,
                     self.read)
        self.saved_at = time.monotonic()

    def _load(self) -> dict[int, dict[str, Any]]:
        if not os.path.isfile(self.path):
            return {}
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure means "score every batch"
            log.warning("test: ignoring unreadable %s (%s: %s); scoring every batch",
                        self.path, type(e).__name__, e)
            return {}
        if not isinstance(saved, dict) or saved.get("settings") != self.settings:
            log.warning("test: ignoring %s, saved for other weights or test settings; "
                        "scoring every batch", self.path)
            return {}
        return saved["batches"]

    def _save(self) -> None:
        atomic_torch_save({"settings": self.settings, "batches": self.batches}, self.path)
        self.saved_at = time.monotonic()

    def on_test_batch_end(self, trainer, pl_module, outputs: TestOutputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        if self.path is None:
            return
        if batch_idx not in self.batches:
            self.batches[batch_idx] = vars(outputs.to("cpu"))
        if time.monotonic() - self.saved_at >= self.save_every_s:
            self._save()

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        """Every batch scored: saved for a stop in what follows (the fooling attack)."""
        if self.path is not None:
            self._save()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """On a stop during testing: save the finished batches, and say so."""
        if isinstance(exception, Stopped) and self.path is not None and self.batches:
            self._save()
            n = len(self.batches)
            exception.saved = " and ".join(filter(None, [
                f"the scores of {n} test batch{'es' if n > 1 else ''} in {self.path}",
                exception.saved]))

    def on_test_end(self, trainer, pl_module: ScoringModule) -> None:
        if self.path is not None:
            log.info("test: %d test batches scored here, %d read from %s",
                     len(self.batches) - self.read, self.read, self.path)
        pl_module.scored = {}

    def remove(self) -> None:
        """Delete this rank's file (once the results are written)."""
        if self.path is not None and os.path.isfile(self.path):
            os.remove(self.path)
