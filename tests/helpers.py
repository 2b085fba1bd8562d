"""What the tests share besides fixtures: the repo's paths, the tiny-run overrides, composing
the real configs, comparing two runs' metrics, a thin conv dAE for float64 checks."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from torch import nn

from overgen.networks import ConvDAE

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# relative to where pytest was launched; conftest exports it absolute, so that train.py
# subprocesses started in other dirs read the same folder
DATA_DIR = os.path.abspath(os.environ.get("OVERGEN_DATA_DIR", ROOT.parent / "shared" / "data"))

# CPU, CSV logger, no progress bar (conf/debug/cpu.yaml); each test sets the sizes it needs
TINY = ["debug=cpu"]


# metrics.json facts that differ between two runs of the same job by design
RUN_FACTS = ("run/overrides", "run/resumed_from", "run/seconds")


def comparable(metrics: dict) -> dict:
    """``metrics`` without ``RUN_FACTS``: what two runs of one job must agree on."""
    return {k: v for k, v in metrics.items() if k not in RUN_FACTS}


def compose_cfg(config_name: str, overrides: list[str], output_dir: Path):
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` and the run dir set to
    ``output_dir``, and set ``HydraConfig`` (choices, overrides) as ``@hydra.main`` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    cfg.paths.output_dir = str(output_dir)  # fixed now: later tests set other HydraConfigs
    return cfg


def small_conv_dae(tied: bool, unpool: str) -> ConvDAE:
    """``ConvDAE`` with thinner layers (conv1 1->1 channel, 16 latent units; conv2 keeps
    its 64 outputs, which the decoder's reshape needs): the same code paths, ~15x cheaper."""
    net = ConvDAE(tied=tied, unpool=unpool)
    enc, hidden = net.encoder, 16
    enc.conv1, enc.conv2 = nn.Conv2d(1, 1, 5, padding=2), nn.Conv2d(1, 64, 5, padding=2)
    enc.fc, net.head = nn.Linear(64 * 7 * 7, hidden), nn.Linear(hidden, 10)
    if tied:
        net.dec_conv2_bias = nn.Parameter(0.1 * torch.randn(1))
        net.dec_fc_bias = nn.Parameter(0.1 * torch.randn(64 * 7 * 7))
    else:
        net.dec_fc = nn.Linear(hidden, 64 * 7 * 7)
        net.dec_conv2 = nn.ConvTranspose2d(64, 1, 5, padding=2)
        net.dec_conv1 = nn.ConvTranspose2d(1, 1, 5, padding=2)
    return net.double()
