"""The fooling attack's saved state: what it depends on, written atomically, read back
only by the same attack (``overgen.attacks.fgn.fool(save_to=...)``)."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from overgen.utils.io import atomic_torch_save

if TYPE_CHECKING:
    from overgen.attacks.fgn import FoolingResult, Rank1Generators
    from overgen.attacks.settings import AttackSettings

log = logging.getLogger(__name__)


def weights_digest(model: nn.Module) -> str:
    """sha256 of the model's state (names, dtypes, shapes, values)."""
    h = hashlib.sha256()
    for name, v in model.state_dict().items():
        h.update(f"{name}:{v.dtype}:{tuple(v.shape)}".encode())
        h.update(v.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def attack_identity(settings: AttackSettings, trials: Tensor, targets: Tensor,
                    dtype: torch.dtype, model: nn.Module) -> dict[str, Any]:
    """What a saved attack must match to be continued: its settings but ``save_every``,
    ``trials [N]``, ``targets [N]``, ``dtype`` and the model's weights. The objective and
    the parametrization keep the keys that states were first saved under (``target``,
    ``generator``), so those still continue."""
    return {"trials": trials.tolist(), "targets": targets.tolist(),
            "thresholds": list(settings.thresholds), "max_steps": settings.max_steps,
            "optimizer": settings.optimizer, "lr": settings.lr, "betas": list(settings.betas),
            "eps": settings.eps, "target": settings.objective,
            "generator": settings.parametrization, "seed": settings.seed, "dtype": str(dtype),
            "model": weights_digest(model)}


def rng_state(device) -> list[Tensor]:
    """torch's CPU generator state, and the CUDA device's when the attack runs there."""
    cuda = torch.device(device).type == "cuda"
    return [torch.get_rng_state(), *([torch.cuda.get_rng_state(device)] if cuda else [])]


def set_rng_state(states: list[Tensor], device) -> None:
    torch.set_rng_state(states[0])
    if len(states) > 1:
        torch.cuda.set_rng_state(states[1], device)


class SavedAttack:
    """The attack's state file ``path``: written every ``every`` updates and on a stop
    signal; read back only by an attack with the same ``settings`` (its arguments, trials
    and the model's weights)."""

    def __init__(self, path: str, every: int, settings: dict[str, Any]) -> None:
        self.path, self.every, self.settings = path, every, settings

    def load(self) -> dict[str, Any] | None:
        """The saved state; None when there is none, or (with a warning) when it cannot
        be read or another attack saved it."""
        if not os.path.isfile(self.path):
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure means "start afresh"
            log.warning("fooling: ignoring unreadable %s (%s: %s); starting afresh",
                        self.path, type(e).__name__, e)
            return None
        if not isinstance(state, dict) or state.get("settings") != self.settings:
            log.warning("fooling: ignoring %s, saved by an attack with other settings or "
                        "another model; starting afresh", self.path)
            return None
        return state

    def save(self, step: int, gen: Rank1Generators, alive: Tensor, result: FoolingResult,
             rng: list[Tensor]) -> None:
        """The state before update ``step + 1``: ``step`` updates done."""
        atomic_torch_save({"settings": self.settings, "step": step, "alive": alive,
                           "generators": gen.state(), "success": result.success,
                           "steps": result.steps, "image": result.image, "rng": rng},
                          self.path)
