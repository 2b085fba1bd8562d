"""What every overgen LightningModule shares: the optimizer and the score interface."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from overgen import networks
from overgen.errors import CheckpointError, ConfigError
from overgen.models.posthoc import FeatureFit, fit_features, posthoc_scores
from overgen.utils import stop
from overgen.utils.cpu import no_cuda_probe_per_step

OptimizerFactory = Callable[..., torch.optim.Optimizer]
# what a checkpoint stores to rebuild a network: {"_target_": "overgen.networks.<class>", **args}
NetworkConfig = Mapping[str, Any]


def network_config(network: nn.Module) -> NetworkConfig | None:
    """The config that rebuilds ``network``: its class and ``init_args`` (None for a network
    that is not one of ``overgen.networks``)."""
    name = type(network).__name__
    if getattr(networks, name, None) is not type(network) or not hasattr(network, "init_args"):
        return None
    return {"_target_": f"{networks.__name__}.{name}", **network.init_args}


def build_network(network: nn.Module | NetworkConfig) -> nn.Module:
    """``network``, or the overgen network that its config (``network_config``) builds; other
    targets are refused, since a checkpoint's config must not run arbitrary code."""
    if isinstance(network, nn.Module):
        return network
    args = dict(network)
    module, _, name = str(args.pop("_target_", "")).rpartition(".")
    if module != networks.__name__ or name not in networks.__all__:
        raise CheckpointError(f"network {module}.{name} is not one of overgen.networks "
                              f"{networks.__all__}")
    return getattr(networks, name)(**args)


#: what the evaluations ask of each test batch: per threshold (``None``: no threshold, the
#: model's own settings) whether every score is needed in full (rankings: ``True``) or only
#: the decisions at that threshold (``False``: the model may gate its costly work)
ScoreNeeds = dict[float | None, bool]


def merge_needs(needs: Iterable[ScoreNeeds]) -> ScoreNeeds:
    """The union of ``needs``: every threshold asked for, in full where any asks so (and
    always without a threshold, where there is nothing to gate on)."""
    merged: ScoreNeeds = {}
    for need in needs:
        for threshold, full in need.items():
            merged[threshold] = merged.get(threshold, False) or full or threshold is None
    return merged


@dataclass
class TestOutputs:
    """One test batch scored once for every evaluation: what ``test_step`` returns and
    callbacks read as ``outputs`` in ``on_test_batch_end``."""

    __test__ = False  # not a pytest test class

    labels: Tensor  #: true classes ``[B]``
    #: final class scores ``[B, C]`` per threshold asked for (``ScoreNeeds``): decisions at
    #: the threshold exact, every score exact where asked in full
    scores: dict[float | None, Tensor]
    probs: Tensor | None = None  #: class probabilities ``y(x)`` ``[B, C]``; None: not probabilistic
    error: Tensor | None = None  #: reconstruction error ``e(x)`` ``[B]`` (dAE)
    #: curvature factor ``Gamma(x)`` ``[B]`` (dAE), NaN where no score needed it
    gamma: Tensor | None = None
    #: post-hoc scores ``[B]`` by name (``outputs.POSTHOC_SCORES``, ``models.posthoc``) where
    #: an evaluation reads them (``Evaluation.reads_posthoc``) and the model has logits
    posthoc: dict[str, Tensor] = field(default_factory=dict)
    #: the batch's values that ``test_step`` logs (``test/mse``, ``test/loss``), scalars
    logged: dict[str, Tensor] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> TestOutputs:
        """A copy with every tensor detached and on ``device``."""
        return TestOutputs(**{f.name: _moved(getattr(self, f.name), device)
                              for f in fields(self)})


def _moved(value: Any, device: torch.device | str) -> Any:
    """``value`` (a tensor, a dict of them or None) detached and on ``device``."""
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value.detach().to(device) if isinstance(value, Tensor) else value


def batch_seed(rank: int, batch_idx: int, *stream: int) -> int:
    """The seed of test batch ``batch_idx`` on DDP rank ``rank``: a function of the run's
    seed (``pl.seed_everything``'s ``PL_GLOBAL_SEED``), the rank and the batch alone;
    ``stream``: other images scored apart from the test set (``callbacks.FarOOD``)."""
    run_seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    entropy = [run_seed, rank, batch_idx, *stream]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


class Scorer(Protocol):
    """``class_scores_at(x[index], thresholds, wanted=wanted)`` of the ``x`` a scorer was
    made for, without gradients."""

    def __call__(self, index: Tensor, thresholds: Sequence[float],
                 wanted: Tensor | None = None) -> list[Tensor]: ...


class ScoringModule(pl.LightningModule):
    """Base LightningModule over ``network`` (an ``nn.Module``, or its config as checkpoints
    store it); ``optimizer`` is a partial (``_partial_: true``) called on the parameters;
    subclasses implement ``class_scores``.

    Checkpoints carry the network's config beside the hyperparameters, so Lightning's
    ``Model.load_from_checkpoint(path)`` rebuilds the model (with Adam's defaults as its
    optimizer: the optimizer is code, not stored; ``overgen.load`` uses the run's config).
    """

    num_classes: int
    #: class scores are probabilities with differentiable ``log_probs``: what thresholds
    #: (accuracy, open set) and the fooling attack need; ranking metrics need neither
    probabilistic: bool = True

    def __init__(self, network: nn.Module | NetworkConfig | None = None,
                 optimizer: OptimizerFactory | None = None) -> None:
        super().__init__()
        if network is not None:  # models fitted without a network (OC-SVM) have none
            self.network = build_network(network)
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.score_needs: ScoreNeeds = {}
        self.posthoc_wanted = False  # an evaluation reads TestOutputs.posthoc
        self.feature_fit: FeatureFit | None = None
        #: test batches an earlier, stopped evaluation of these weights scored, by batch
        #: index (``callbacks.TestProgress``): ``test_step`` returns them as they are
        self.scored: dict[int, TestOutputs] = {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        network = getattr(self, "network", None)
        config = None if network is None else network_config(network)
        if config is not None:
            checkpoint.setdefault(self.CHECKPOINT_HYPER_PARAMS_KEY, {})["network"] = config

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        """Final scores ``[B, C]`` that thresholds act on, as judged at ``threshold``.

        A model may pair settings with a threshold (the dAE's alpha) and, with ``gate``,
        skip costly work for samples that cannot reach it (their scores stay below it).
        """
        raise NotImplementedError

    def scores_for(self, x: Tensor, needs: ScoreNeeds) -> dict[float | None, Tensor]:
        """``class_scores`` at each threshold of ``needs``, gated where not asked in full."""
        return {t: self.class_scores(x, threshold=t, gate=not full) for t, full in needs.items()}

    def on_test_start(self) -> None:
        """Gathers what the test callbacks ask of each batch (their ``score_needs()``, the
        post-hoc scores) and fits the Mahalanobis score where they are read."""
        callbacks = self.trainer.callbacks
        self.score_needs = merge_needs(cb.score_needs() for cb in callbacks
                                       if hasattr(cb, "score_needs"))
        self.posthoc_wanted = any(getattr(cb, "reads_posthoc", False) for cb in callbacks)
        self.feature_fit = self.fit_hidden() if self.posthoc_wanted else None

    def hidden_layer(self) -> Callable[[Tensor], Tensor] | None:
        """``x -> [B, H]``, the hidden layer the Mahalanobis score is fitted on; None: none."""
        return None

    def fit_hidden(self) -> FeatureFit | None:
        """The Mahalanobis fit on the training set's hidden layer (one pass over the
        datamodule's training batches, summed across DDP ranks); None without a hidden
        layer. Recomputed at each test, so checkpoints need not carry it."""
        hidden = self.hidden_layer()
        if hidden is None:
            return None
        dm = self.trainer.datamodule
        dm.setup("fit")

        def batches():
            for batch in dm.train_dataloader():
                stop.check()  # the pass takes seconds to a minute on a CPU
                yield dm.on_after_batch_transfer([t.to(self.device) for t in batch], 0)

        return fit_features(hidden, batches(), self.num_classes,
                            lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"))

    def posthoc_for(self, logits: Tensor, probs: Tensor, hidden: Tensor | None,
                    reconstruction: Tensor | None = None) -> dict[str, Tensor]:
        """``posthoc_scores`` of a test batch where an evaluation reads them, else ``{}``."""
        if not self.posthoc_wanted:
            return {}
        return posthoc_scores(logits, probs, hidden, self.feature_fit, reconstruction)

    def test_step(self, batch, batch_idx: int) -> TestOutputs:
        """The batch scored once for every evaluation (``score_batch``), or read from
        ``self.scored``; its ``logged`` values logged. Scored by ``score_seeded``, so a
        batch's scores do not depend on the batches scored before it (a resumed evaluation
        equals an uninterrupted one)."""
        out = self.scored.get(batch_idx)
        out = self.score_seeded(batch, batch_idx) if out is None else out.to(self.device)
        for name, value in out.logged.items():
            self.log(name, value, sync_dist=True)
        return out

    def score_seeded(self, batch, batch_idx: int, *stream: int) -> TestOutputs:
        """``score_batch(batch, batch_idx)`` with its random draws (Hutchinson's probes) from
        torch's CPU generator seeded by ``batch_seed(self.global_rank, batch_idx, *stream)``,
        the run's own random stream left as it was: the one way test batches and other
        scored images (``callbacks.FarOOD``: ``stream``) are scored. Outside any autocast
        (``trainer.precision=bf16-mixed`` enters one around the test step), in the weights'
        float32: the thresholds act on ``exp(-alpha e/D)`` at a per-pixel error of ~0.003
        and on ``Gamma``, and bfloat16 keeps 8 significant bits (about 0.4% relative)."""
        with (torch.random.fork_rng(devices=[]),
              torch.autocast(self.device.type, enabled=False)):
            torch.default_generator.manual_seed(batch_seed(self.global_rank, batch_idx,
                                                           *stream))
            return self.score_batch(batch, batch_idx)

    def score_batch(self, batch, batch_idx: int) -> TestOutputs:
        """The batch scored once for every evaluation (``self.score_needs``)."""
        x, y = batch
        return TestOutputs(y, self.scores_for(x, self.score_needs))

    def class_scores_at(self, x: Tensor, thresholds: Sequence[float],
                        wanted: Tensor | None = None) -> list[Tensor]:
        """``[class_scores(x, threshold=t) for t in thresholds]``; models override it to
        share work between thresholds. ``wanted [B, len(thresholds)]`` (bool) marks the
        decisions the caller will read; a model may skip costly work for the others, whose
        scores are then only upper bounds."""
        return [self.class_scores(x, threshold=t) for t in thresholds]

    def check_thresholds(self, thresholds: Sequence[float], key: str) -> None:
        """Raise a ``ConfigError`` unless the scores can be judged at every threshold in
        ``thresholds``, which the callback setting ``key`` uses; called before any work."""
        if not self.probabilistic:
            raise ConfigError(key, list(thresholds),
                              f"{type(self).__name__}'s class scores are not probabilities: "
                              "no thresholds, no log_probs to attack (ranking callbacks "
                              "only, e.g. callbacks=oneclass)")

    def log_probs(self, x: Tensor) -> Tensor:
        """Unscaled class log-probabilities ``log y(x)``, ``[B, C]`` (differentiable)."""
        raise NotImplementedError

    def log_probs_with_scorer(self, x: Tensor) -> tuple[Tensor, Scorer]:
        """``log_probs(x)`` and a ``Scorer`` for the same ``x``, for loops that need both
        (the fooling attack); models override it to score from the same forward pass."""
        return self.log_probs(x), fresh_scorer(self, x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())

    def on_train_start(self) -> None:
        if self.device.type == "cpu":
            no_cuda_probe_per_step()

    def log_train(self, values: dict[str, Tensor]) -> None:
        """``log_dict(values, prog_bar=True)`` on the steps whose values reach the loggers
        (every ``trainer.log_every_n_steps``) and no others: each ``self.log`` costs Python
        time that is a few percent of a CPU training step."""
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        if (self.global_step + 1) % every == 0:
            self.log_dict(values, prog_bar=True)


def training_columns(score: Tensor, train_classes: Tensor, num_classes: int) -> Tensor:
    """A 1-class model's class scores ``[B, C]`` from its one score per image ``[B]``: the
    score in every training class's column, ``-inf`` elsewhere (the argmax is a training
    class)."""
    scores = score.new_full((len(score), num_classes), -torch.inf)
    scores[:, train_classes] = score[:, None]
    return scores


class FittedBuffers(nn.Module):
    """Mixin for models whose buffers are fitted on the training data, empty before: loading
    a ``state_dict`` gives each buffer the checkpoint's shape first."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        for name, buffer in self.named_buffers(recurse=False):
            if prefix + name in state_dict:
                setattr(self, name, buffer.new_empty(state_dict[prefix + name].shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def fresh_scorer(model: ScoringModule, x: Tensor) -> Scorer:
    """A ``Scorer`` for ``x`` that runs ``model.class_scores_at`` on the rows asked for."""

    def scorer(index: Tensor, thresholds: Sequence[float],
               wanted: Tensor | None = None) -> list[Tensor]:
        with torch.no_grad():
            return model.class_scores_at(x[index].detach(), thresholds, wanted=wanted)

    return scorer
