"""Small-model training throughput: ``experiment=rings2d`` (2-200-200 MLP dAE, batch 64) run
by the framework (Trainer + RingsDataModule + DAEClassifier + the callbacks ``train``
adds) against a plain PyTorch loop on the same tensors, network, optimizer and batch.

    OVERGEN_DATA_DIR=/work/shared/data python bench/small_model.py --steps 3000
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import contextmanager

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import training
from hydra.utils import instantiate

from overgen.data.rings import RingsDataModule
from overgen.data.sampler import TensorBatches, batch_loader
from overgen.networks import MLPDAE
from overgen.stopping import StopOnNonFiniteLoss, StopOnSignal
from overgen.utils.cpu import NVML_CHECK

BATCH, SIGMA = 64, 0.2


class StepTimer(pl.Callback):
    """Training steps per second (``training.Clock``: wall and CPU time) from the start of
    the training loop to its end."""

    def __init__(self) -> None:
        self.clock = training.Clock()

    def on_train_start(self, trainer, pl_module) -> None:
        self.clock.start()

    def on_train_end(self, trainer, pl_module) -> None:
        self.clock.samples = trainer.global_step
        self.rates = self.clock.stop()


def framework_run(steps: int, device: str = "cpu") -> dict[str, float]:
    """Steps/s of ``trainer.fit`` for ``experiment=rings2d`` cut to ``steps``, with the
    callbacks ``overgen.tasks.train`` adds to every fit (periodic checkpoint, stop on a
    signal, stop on a non-finite loss), CSV logger, no progress bar."""
    with tempfile.TemporaryDirectory() as out:
        cfg = training.compose_train(["experiment=rings2d", "debug=cpu", "callbacks=none",
                                      f"trainer.max_steps={steps}",
                                      f"trainer.accelerator={device.split(':')[0]}",
                                      f"paths.output_dir={out}"])
        timer = StepTimer()
        callbacks = [instantiate(cfg.checkpoint), StopOnSignal(),
                     StopOnNonFiniteLoss(cfg.checkpoint.dirpath), timer]
        loggers = [instantiate(c) for c in cfg.logger.values()]
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
        trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))
    return timer.rates


def rings_train(device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The training tensors of ``data=rings2d`` (60,000 points, labels) on ``device``."""
    dm = RingsDataModule()
    dm.setup("fit")
    return tuple(t.to(device) for t in dm._train.tensors)


def plain_loss(net: MLPDAE, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE(y(x~)) + batch mean of sum_i (r_i(x~) - x_i)^2, ``x~ = x + N(0, 0.2^2)``."""
    h, _ = net.encode(x + SIGMA * torch.randn_like(x))
    rec = (net.decode(h) - x).pow(2).sum(1).mean()
    return F.cross_entropy(net.classify(h), y) + rec


@contextmanager
def plain_process():
    """The environment of a process without Lightning: no NVML-based CUDA check (which
    Lightning's import sets; ``overgen.utils.cpu.no_cuda_probe_per_step``)."""
    lightning_set = os.environ.pop(NVML_CHECK, None)
    try:
        yield
    finally:
        if lightning_set is not None:
            os.environ[NVML_CHECK] = lightning_set


def plain_run(data: tuple[torch.Tensor, torch.Tensor], steps: int) -> dict[str, float]:
    """Steps/s (``training.Clock``) of a hand-written Adam loop over shuffled batches of 64
    of ``data`` (``plain_process``)."""
    x_all, y_all = data
    net = MLPDAE().to(x_all.device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    clock, done = training.Clock(), 0
    with plain_process():
        clock.start()
        while done < steps:
            for idx in torch.randperm(len(y_all), device=x_all.device).split(BATCH):
                loss = plain_loss(net, x_all[idx], y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                done += 1
                if done == steps:
                    break
        if x_all.is_cuda:
            torch.cuda.synchronize()
        clock.samples = steps
        return clock.stop()


class PlainModule(pl.LightningModule):
    """The plain loop's network, loss and optimizer as a bare LightningModule."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MLPDAE()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return plain_loss(self.net, *batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3, betas=(0.9, 0.999))


def lightning_run(data: tuple[torch.Tensor, torch.Tensor], steps: int,
                  device: str = "cpu") -> dict[str, float]:
    """Steps/s of ``PlainModule`` in Lightning's own loop at its leanest
    (``Trainer(barebones=True)``, no logger, callbacks or checkpoints; ``plain_process``)
    over the rings data module's loader of ``data``: the ceiling of any framework on
    Lightning's loop."""
    timer = StepTimer()
    trainer = pl.Trainer(barebones=True, max_steps=steps, callbacks=[timer], devices=1,
                         accelerator=device.split(":")[0])
    loader = batch_loader(TensorBatches(*(t.cpu() for t in data)), BATCH, True, seed=0)
    with plain_process():
        trainer.fit(PlainModule(), train_dataloaders=loader)
    return timer.rates


def best_rates(steps: int, repeats: int, device: str = "cpu") -> dict[tuple[str, str], float]:
    """Best steps/s of each side and clock (wall, CPU) over ``repeats`` interleaved rounds
    (order alternates)."""
    data = rings_train(device)
    plain_run(data, 50)  # warm-up
    runs = {"plain": lambda: plain_run(data, steps),
            "lightning": lambda: lightning_run(data, steps, device),
            "framework": lambda: framework_run(steps, device)}
    best = {(side, clock): 0.0 for side in runs for clock in ("wall", "cpu")}
    for r in range(repeats):
        for side in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            rates = runs[side]()
            for clock, rate in rates.items():
                best[side, clock] = max(best[side, clock], rate)
            print(f"  round {r + 1} rings2d  {side:9s} {rates['wall']:7.1f} steps/s "
                  f"({rates['cpu']:.1f} per CPU-s)", flush=True)
    return best


def row(best: dict[tuple[str, str], float], steps: int) -> str:
    """The table rows: framework steps/s against the plain loop's (floor 0.8), and
    Lightning's bare loop against it."""
    fw, plain = best["framework", "wall"], best["plain", "wall"]
    cpu = best["framework", "cpu"] / best["plain", "cpu"]
    ok = "met" if fw / plain >= 0.8 else "**not met**"
    bare = best["lightning", "wall"]
    bare_cpu = best["lightning", "cpu"] / best["plain", "cpu"]
    return "\n".join([
        f"| 7 | `experiment=rings2d` training (2-200-200 MLP dAE), framework, {steps:,} steps "
        f"of batch 64 | {fw:,.0f} steps/s | plain loop {plain:,.0f} steps/s | {fw / plain:.2f} "
        f"(per CPU-second {cpu:.2f}) | >= 0.8 ({ok}) |",
        f"| 7 | the same network, loss and Adam in Lightning's own loop alone "
        f"(`Trainer(barebones=True)`, no callbacks, logger or checkpoints) | {bare:,.0f} "
        f"steps/s | plain loop {plain:,.0f} steps/s | {bare / plain:.2f} (per CPU-second "
        f"{bare_cpu:.2f}) | ceiling on Lightning's loop |"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    best = best_rates(args.steps, args.repeats, args.device)
    print(row(best, args.steps))


if __name__ == "__main__":
    main()
