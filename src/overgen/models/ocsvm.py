"""One-class SVM baseline (docs/method.md): scikit-learn ``OneClassSVM`` on the 784-d pixels,
fitted by ``train.py`` without a Lightning training loop."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl
import torch
from sklearn.svm import OneClassSVM
from torch import Tensor

from overgen.errors import ConfigError
from overgen.models.base import FittedBuffers, ScoringModule, training_columns
from overgen.scores import SVM_KERNELS, svm_decision

log = logging.getLogger(__name__)

GAMMAS = ("scale", "auto")


def svm_gamma(gamma: float | str, x: Tensor) -> float:
    """scikit-learn's numeric gamma for training data ``x: [N, D]``: ``"scale"``:
    ``1 / (D var(x))`` (1 when ``var(x) = 0``), ``"auto"``: ``1 / D``, a number as is."""
    if gamma == "scale":
        var = float(x.var(unbiased=False))
        return 1.0 / (x.shape[1] * var) if var != 0 else 1.0
    return 1.0 / x.shape[1] if gamma == "auto" else float(gamma)


class OneClassSVMModel(FittedBuffers, ScoringModule):
    """``OneClassSVM(kernel, nu, gamma)`` on flattened inputs in [0, 1].

    ``class_scores: [B, C]``: the decision function in every column of a training class,
    ``-inf`` elsewhere, so the argmax is a training class. The scores are not
    probabilities: only ranking metrics (AUROC) mean anything; thresholds and the fooling
    attack (no ``log_probs``) are refused. The fitted state is kept in float64 buffers
    (support vectors, dual coefficients, intercept, numeric gamma, training classes), so
    a checkpoint holds it and the decision function is computed in torch.
    """

    probabilistic = False

    def __init__(self, kernel: str = "rbf", nu: float = 0.1, gamma: float | str = 0.1,
                 max_train: int | None = None, num_classes: int = 10) -> None:
        super().__init__()
        if max_train is not None and (not isinstance(max_train, int) or max_train < 1):
            raise ConfigError("model.max_train", max_train,
                              "a positive integer, or null for every training image")
        if not isinstance(nu, (int, float)) or not 0 < nu <= 1:
            raise ConfigError("model.nu", nu, "a number in (0, 1]")
        if kernel not in SVM_KERNELS:
            raise ConfigError("model.kernel", kernel, f"one of {list(SVM_KERNELS)}")
        if gamma not in GAMMAS and (not isinstance(gamma, (int, float)) or gamma <= 0):
            raise ConfigError("model.gamma", gamma, f"a positive number or one of {list(GAMMAS)}")
        self.save_hyperparameters()
        self.kernel, self.nu, self.gamma = kernel, nu, gamma
        self.max_train, self.num_classes = max_train, num_classes
        double = torch.float64
        self.register_buffer("support", torch.empty(0, 0, dtype=double))
        self.register_buffer("dual_coef", torch.empty(0, dtype=double))
        self.register_buffer("intercept", torch.zeros((), dtype=double))
        self.register_buffer("gamma_value", torch.zeros((), dtype=double))
        self.register_buffer("train_classes", torch.empty(0, dtype=torch.long))

    def fit_without_trainer(self, datamodule: pl.LightningDataModule) -> None:
        """Fit on the first ``max_train`` images of the (shuffled) training loader; logs a
        line before (the sample count) and after (the time taken)."""
        datamodule.setup("fit")
        xs, n = [], 0
        for batch in datamodule.train_dataloader():
            x, _ = datamodule.on_after_batch_transfer(batch, 0)
            xs.append(x.flatten(1))
            n += len(x)
            if self.max_train is not None and n >= self.max_train:
                break
        x = torch.cat(xs)[: self.max_train].double()
        gamma = svm_gamma(self.gamma, x)
        # scikit-learn's fit reports no progress (libsvm's verbose output is a C-level dump)
        log.info("ocsvm: fitting OneClassSVM(kernel=%s, nu=%s, gamma=%.4g) on %d images of "
                 "%d pixels", self.kernel, self.nu, gamma, len(x), x.shape[1])
        started = time.monotonic()
        svm = OneClassSVM(kernel=self.kernel, nu=self.nu, gamma=gamma).fit(x.numpy())
        log.info("ocsvm: fitted in %.1f s, %d support vectors", time.monotonic() - started,
                 len(svm.support_))
        self.support = torch.as_tensor(svm.support_vectors_, dtype=torch.float64)
        self.dual_coef = torch.as_tensor(svm.dual_coef_[0], dtype=torch.float64)
        self.intercept = torch.tensor(float(svm.intercept_[0]), dtype=torch.float64)
        self.gamma_value = torch.tensor(gamma, dtype=torch.float64)
        self.train_classes = torch.tensor(list(datamodule.train_classes), dtype=torch.long)

    def decision_function(self, x: Tensor) -> Tensor:
        """scikit-learn's ``decision_function`` of the fitted SVM, ``[B]`` (float64)."""
        if not len(self.train_classes):
            raise RuntimeError("OneClassSVMModel is not fitted: call fit_without_trainer or "
                               "load a checkpoint's state_dict first")
        return svm_decision(x.flatten(1).to(self.support.dtype), self.support,
                            self.dual_coef, self.intercept, self.gamma_value, self.kernel)

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        """``decision_function(x)`` in the training classes' columns, ``-inf`` elsewhere."""
        return training_columns(self.decision_function(x).to(x.dtype), self.train_classes,
                                self.num_classes)

    def configure_optimizers(self) -> None:
        return None
