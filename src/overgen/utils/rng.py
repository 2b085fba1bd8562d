"""The random generators' state of this process, and of every DDP rank: what a checkpoint
keeps so that a resumed run draws the numbers an uninterrupted one would."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

RngState = dict[str, Any]


def state() -> RngState:
    """torch's CPU (and CUDA) generators, numpy's and Python's global ones, as tensors and
    plain values (checkpoints still load with ``weights_only=True``)."""
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": np_state["state"]["pos"], "has_gauss": np_state["has_gauss"],
                  "gauss": np_state["gauss"]},
        "python": random.getstate(),
    }


def set_state(saved: RngState) -> None:
    """Restore ``state()``'s generators; a state without numpy's or Python's (checkpoints
    written before they were kept) restores torch's alone."""
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    if "numpy" in saved:
        np_state = saved["numpy"]
        np.random.set_state({"bit_generator": "MT19937", "has_gauss": np_state["has_gauss"],
                             "gauss": np_state["gauss"],
                             "state": {"key": np_state["key"].numpy().astype(np.uint32),
                                       "pos": np_state["pos"]}})
    if "python" in saved:
        random.setstate(saved["python"])


def every_rank(mine: RngState) -> list[RngState]:
    """Every DDP rank's ``mine``, by rank (a collective: every rank calls it); ``[mine]``
    outside DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [mine]
    states: list[RngState | None] = [None] * dist.get_world_size()
    dist.all_gather_object(states, mine)
    return states
