"""Training throughput: the framework (Trainer + MNISTDataModule + model from conf/) against
a plain PyTorch loop doing the same math on tensors already in memory; FLOP efficiency."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode
from torchvision.datasets import MNIST

CONF = Path(__file__).resolve().parents[1] / "conf"
BATCH = 64


def compose_train(overrides: list[str]):
    """``conf/train.yaml`` composed with ``overrides`` (what ``train.py`` would see)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides)


class Clock:
    """Samples per second of wall time and of this process's CPU time (all threads; steadier
    than wall time when other jobs share the cores)."""

    def start(self) -> None:
        self.samples, self.wall, self.cpu = 0, time.perf_counter(), time.process_time()

    def stop(self) -> dict[str, float]:
        return {"wall": self.samples / (time.perf_counter() - self.wall),
                "cpu": self.samples / (time.process_time() - self.cpu)}


class EpochTimer(pl.Callback):
    """A ``Clock`` from the start of the training epoch (before the first batch is fetched)
    to its end, counting the samples of every batch."""

    def __init__(self) -> None:
        self.clock = Clock()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.clock.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.clock.samples += len(batch[0])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.rates = self.clock.stop()


def framework_run(model: str, data_dir: str, batches: int | None,
                  device: str = "cpu",
                  overrides: tuple[str, ...] = ()) -> tuple[dict, pl.LightningModule]:
    """Samples/s (``Clock``) of one ``trainer.fit`` epoch (``batches`` of it, or all with
    None) on ``device``, conf/trainer/default.yaml settings (and ``overrides``, e.g.
    ``trainer.precision=bf16-mixed``), CSV logger, no progress bar, no checkpoint."""
    with tempfile.TemporaryDirectory() as out:
        limit = [] if batches is None else [f"trainer.limit_train_batches={batches}"]
        cfg = compose_train([f"model={model}", "data=mnist", "debug=cpu", "callbacks=none",
                             "trainer.max_epochs=1", "++trainer.enable_checkpointing=false",
                             f"paths.data_dir={data_dir}", "data.download=false",
                             f"paths.output_dir={out}", f"trainer.accelerator={device}",
                             *limit, *overrides])
        datamodule, module, timer = instantiate(cfg.data), instantiate(cfg.model), EpochTimer()
        loggers = [instantiate(c) for c in cfg.logger.values()]
        trainer = instantiate(cfg.trainer, callbacks=[timer], logger=loggers)
        trainer.fit(module, datamodule=datamodule)
    return timer.rates, module


def load_train(data_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST training set as ``float [N, 1, 28, 28]`` in [0, 1] and labels, in memory."""
    ds = MNIST(data_dir, train=True, download=False)
    return ds.data.unsqueeze(1).float().div(255.0), ds.targets.long()


def plain_network(model: str) -> torch.nn.Module:
    """The same ``nn.Module`` the framework trains, built without Hydra or Lightning."""
    from overgen.networks import ConvClassifier, ConvDAE

    return ConvClassifier(10) if model == "cnn" else ConvDAE(10, tied=True, unpool="switches")


def plain_loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float = 0.2):
    """CE for ``cnn``; CE(y(x~)) + batch mean of sum_i (r_i(x~) - x_i)^2 for the dAE."""
    if not hasattr(net, "encode"):
        return F.cross_entropy(net(x), y)
    h, ctx = net.encode(x + sigma * torch.randn_like(x))
    rec = (net.decode(h, ctx) - x).flatten(1).pow(2).sum(1).mean()
    return F.cross_entropy(net.classify(h), y) + rec


def plain_run(model: str, data: tuple[torch.Tensor, torch.Tensor], batches: int | None) -> dict:
    """Samples/s (``Clock``) of a hand-written Adam loop over shuffled in-memory batches of 64
    (on the device of ``data``)."""
    x_all, y_all = data
    net = plain_network(model).to(x_all.device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    order = torch.randperm(len(y_all)).split(BATCH)
    order = order if batches is None else order[:batches]
    clock = Clock()
    clock.start()
    for idx in order:
        x, y = x_all[idx], y_all[idx]
        loss = plain_loss(net, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock.samples += len(idx)
    if x_all.is_cuda:
        torch.cuda.synchronize()
    return clock.stop()


def step_flops(model: str) -> tuple[float, float]:
    """Conv + linear FLOPs per sample (PyTorch's FlopCounterMode): forward, training step."""
    net, x, y = plain_network(model), torch.rand(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as fwd, torch.no_grad():
        plain_loss(net, x, y)
    with FlopCounterMode(display=False) as train:
        plain_loss(net, x, y).backward()
    return fwd.get_total_flops() / BATCH, train.get_total_flops() / BATCH


def matmul_flops(n: int = 4096, repeats: int = 3, device: str = "cpu") -> float:
    """The fp32 matrix-multiply FLOP/s of ``device``: best of ``repeats`` ``torch.mm`` of
    n x n."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = min(_timed(torch.mm, a, b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    out = fn(*args)
    if out.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start
