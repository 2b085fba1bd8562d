"""One-class SVM baseline (SPEC.md §2): scikit-learn ``OneClassSVM`` on the 784-d pixels,
fitted by ``train.py`` without a Lightning training loop."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from sklearn.svm import OneClassSVM
from torch import Tensor

from overgen.errors import ConfigError


class OneClassSVMModel(pl.LightningModule):
    """``OneClassSVM(kernel, nu, gamma)`` on flattened inputs in [0, 1].

    ``class_scores: [B, C]``: the ``decision_function`` in every column of a training
    class, ``-inf`` elsewhere, so the argmax is a training class. The scores are not in
    [0, 1]: only ranking metrics (AUROC) mean anything; thresholds do not. The fitted
    scikit-learn model lives outside the ``state_dict`` (no checkpoint holds it).
    """

    def __init__(self, kernel: str = "rbf", nu: float = 0.1, gamma: float | str = 0.1,
                 max_train: int | None = None, num_classes: int = 10) -> None:
        super().__init__()
        if max_train is not None and (not isinstance(max_train, int) or max_train < 1):
            raise ConfigError("model.max_train", max_train,
                              "a positive integer, or null for every training image")
        if not isinstance(nu, (int, float)) or not 0 < nu <= 1:
            raise ConfigError("model.nu", nu, "a number in (0, 1]")
        self.save_hyperparameters()
        self.svm = OneClassSVM(kernel=kernel, nu=nu, gamma=gamma)
        self.max_train, self.num_classes = max_train, num_classes
        self.train_classes: list[int] = []

    def fit_without_trainer(self, datamodule: pl.LightningDataModule) -> None:
        """Fit on the first ``max_train`` images of the (shuffled) training loader."""
        datamodule.setup("fit")
        xs, n = [], 0
        for batch in datamodule.train_dataloader():
            x, _ = datamodule.on_after_batch_transfer(batch, 0)
            xs.append(x.flatten(1))
            n += len(x)
            if self.max_train is not None and n >= self.max_train:
                break
        x = torch.cat(xs)[: self.max_train]
        self.svm.fit(x.double().numpy())
        self.train_classes = list(datamodule.train_classes)

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        """``decision_function(x)`` in the training classes' columns, ``-inf`` elsewhere."""
        s = self.svm.decision_function(x.flatten(1).detach().double().cpu().numpy())
        scores = x.new_full((len(x), self.num_classes), -np.inf)
        scores[:, self.train_classes] = torch.as_tensor(s, dtype=x.dtype, device=x.device)[:, None]
        return scores

    def test_step(self, batch, batch_idx: int) -> None:
        return None

    def configure_optimizers(self) -> None:
        return None
