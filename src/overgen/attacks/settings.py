"""The fooling attack's settings (docs/method.md §3), checked once: ``AttackSettings``.

Users set them under ``callbacks.fooling`` (conf/callbacks/fooling.yaml), where the loss
objective is ``target`` and the generator parametrization ``generator``; errors name
those keys, in the one-line ``key=value is not allowed: ...`` form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from overgen.errors import ConfigError

KEY = "callbacks.fooling"
OPTIMIZERS = ("adam", "sgd")
DEFAULT_LR = {"adam": 1e-5, "sgd": 1e-3}  # docs/method.md §3
OBJECTIVES = ("y", "y_tilde")
PARAMETRIZATIONS = ("rank1", "linear")
# the config key of each setting whose name differs
CONFIG_NAMES = {"objective": "target", "parametrization": "generator"}


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return _number(value) and value > 0


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class AttackSettings:
    """How every trial is attacked. ``objective``: the loss, ``-log y_t`` (``"y"``) or
    ``-log`` of the final score (``"y_tilde"``); ``parametrization``: the generators as
    rank-1 pre-activations (``"rank1"``) or one ``nn.Linear`` each (``"linear"``, the slow
    reference); ``lr=None`` becomes ``DEFAULT_LR[optimizer]``. ``save_every``: save the
    attack's state every that many updates and on a stop signal (``None``: never; the
    linear parametrization's state is never saved)."""

    thresholds: tuple[float, ...] = (0.90, 0.99)
    max_steps: int = 10_000
    optimizer: str = "adam"
    lr: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    objective: str = "y"
    parametrization: str = "rank1"
    seed: int = 0
    save_every: int | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("optimizer", OPTIMIZERS), ("objective", OBJECTIVES),
                              ("parametrization", PARAMETRIZATIONS)):
            if getattr(self, name) not in allowed:
                self._refuse(name, f"one of {list(allowed)}")
        if not _positive_int(self.max_steps):
            self._refuse("max_steps", "a positive integer")
        if not self.thresholds or not all(_number(t) and 0 < t <= 1 for t in self.thresholds):
            self._refuse("thresholds", "a non-empty list in (0, 1]")
        if self.lr is not None and not _positive(self.lr):
            self._refuse("lr", "a positive number, or null for the default")
        if not _positive(self.eps):
            self._refuse("eps", "a positive number")
        if len(self.betas) != 2 or not all(_number(b) and 0 <= b < 1 for b in self.betas):
            self._refuse("betas", "two numbers in [0, 1)")
        if self.save_every is not None and not _positive_int(self.save_every):
            self._refuse("save_every", "a positive integer or null")
        if self.save_every is not None and self.parametrization != "rank1":
            self._refuse("save_every", f"null with {KEY}.{CONFIG_NAMES['parametrization']}="
                         f"{self.parametrization} (only the rank1 generator's state is saved)")
        lr = DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)
        for name, value in (("thresholds", tuple(float(t) for t in self.thresholds)),
                            ("betas", tuple(float(b) for b in self.betas)), ("lr", lr)):
            object.__setattr__(self, name, value)

    def _refuse(self, name: str, allowed: str) -> None:
        value = getattr(self, name)
        raise ConfigError(f"{KEY}.{CONFIG_NAMES.get(name, name)}",
                          list(value) if isinstance(value, Sequence) and not isinstance(
                              value, str) else value, allowed)
