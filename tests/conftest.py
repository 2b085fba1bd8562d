"""Fixtures and the session's environment: offline W&B, the data dir exported absolute.
Shared helpers (paths, tiny overrides, ``compose_cfg``) live in ``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import DATA_DIR
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

os.environ["OVERGEN_DATA_DIR"] = DATA_DIR
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


@pytest.fixture
def mnist_dir() -> str:
    if not (Path(DATA_DIR) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found under {DATA_DIR}")
    return DATA_DIR
