"""What the console shows: the one place that keeps notices no overgen user can act on off
it (entry points only: a library import changes no global filter), and the progress bar."""

from __future__ import annotations

import logging
import re
import warnings

from pytorch_lightning.callbacks import TQDMProgressBar

# (category, message start) of warnings that every run would print (wandb's "anonymous
# setting has no effect" is not filtered but avoided: overgen.utils.loggers.WandbLogger)
KNOWN_WARNINGS = (
    # Lightning builds torch pytree leaves the way torch now deprecates
    (FutureWarning, "`isinstance(treespec, LeafSpec)` is deprecated"),
    # torch's forward-mode AD (the exact curvature's JVPs) loads its decompositions this way
    (FutureWarning, "`torch.jit.script` is deprecated"),
    # overgen's data sets have a validation set only with data.val_size > 0 (none by default,
    # as in the paper): the models can validate, and skipping it is the intended behaviour
    (UserWarning, "You defined a `validation_step` but have no `val_dataloader`"),
)
# Lightning's advertisement, logged at INFO beside notices worth reading
KNOWN_LOG_STARTS = {"pytorch_lightning.utilities.rank_zero": "💡 Tip:"}


class _DropStart(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def quiet_known_noise() -> None:
    """Ignore ``KNOWN_WARNINGS`` and drop the ``KNOWN_LOG_STARTS`` log records."""
    for category, start in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(start), category=category)
    for name, start in KNOWN_LOG_STARTS.items():
        logging.getLogger(name).addFilter(_DropStart(start))


class TrainingProgressBar(TQDMProgressBar):
    """Lightning's progress bar, redrawn every ``train_every`` training steps (and at an
    epoch's last) instead of at each: a redraw reads the logged metrics, about a quarter
    of a millisecond on a CPU, as long as a small model's whole step. Test and validation
    batches are shown as each ends."""

    def __init__(self, train_every: int = 50) -> None:
        super().__init__()
        self.train_every = train_every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = batch_idx + 1
        if n % self.train_every == 0 or n == self.train_progress_bar.total:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
