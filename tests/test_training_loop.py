"""The training loop's speed levers change no result: the framework trains the rings dAE to
the weights of a hand-written loop; the non-finite-loss check, no longer run at every step,
still names the first bad step and never lets a checkpoint after it be written; sweep jobs
share the cores."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import CONF, ROOT, TINY, compose_cfg
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from overgen.data.rings import sample_rings
from overgen.errors import ConfigError, NonFiniteLossError
from overgen.networks import MLPDAE
from overgen.stopping import StopOnNonFiniteLoss
from overgen.utils import cpu


def hand_written_rings_training(seed: int, steps: int) -> dict[str, torch.Tensor]:
    """The rings dAE's training written out (docs/method.md §1, §3): the data, shuffle,
    initialisation and noise drawn from the same seeds as the framework's, then Adam on
    CE(y(x~)) + mean_b sum_i (r_i(x~) - x_i)^2, batch 64."""
    g = torch.Generator().manual_seed(seed)
    x, y = sample_rings(20_000, generator=g)
    torch.manual_seed(seed)
    net = MLPDAE(2, 200, 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100_003))
    for idx in order.split(64)[:steps]:
        xb, yb = x[idx], y[idx]
        h, _ = net.encode(xb + 0.2 * torch.randn_like(xb))
        loss = F.cross_entropy(net.classify(h), yb) + (net.decode(h) - xb).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {f"network.{k}": v for k, v in net.state_dict().items()}


@pytest.mark.e2e
def test_framework_trains_the_rings_dae_to_the_hand_written_loops_weights(tmp_path,
                                                                          monkeypatch):
    from overgen.tasks import train

    monkeypatch.setenv(cpu.NVML_CHECK, "1")  # as Lightning's import leaves it
    cfg = compose_cfg("train", ["experiment=rings2d", *TINY, "callbacks=none",
                                "trainer.max_steps=60", "seed=7",
                                "trainer.enable_progress_bar=true"], tmp_path)  # as by default
    train(cfg)
    trained = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert trained["global_step"] == 60
    expected = hand_written_rings_training(seed=7, steps=60)
    assert set(trained["state_dict"]) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(trained["state_dict"][name], value, rtol=0, atol=1e-6,
                                   msg=name)
    assert cpu.NVML_CHECK not in os.environ  # no NVML load per Adam step on the CPU


def test_progress_bar_redraws_every_50_training_steps_and_at_the_epochs_end(monkeypatch):
    from pytorch_lightning.callbacks import TQDMProgressBar

    from overgen.utils.console import TrainingProgressBar

    drawn = []
    monkeypatch.setattr(TQDMProgressBar, "on_train_batch_end",
                        lambda self, trainer, module, outputs, batch, i: drawn.append(i + 1))
    monkeypatch.setattr(TQDMProgressBar, "train_progress_bar", SimpleNamespace(total=120))
    bar = TrainingProgressBar()
    for i in range(120):
        bar.on_train_batch_end(None, None, None, None, i)
    assert drawn == [50, 100, 120]


def _fake_trainer(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, current_epoch=0,
                           fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_idx=step)))


def _feed(callback: StopOnNonFiniteLoss, losses: list[float]) -> None:
    for step, loss in enumerate(losses):
        callback.on_before_backward(_fake_trainer(step), None, torch.tensor(loss))


def test_nonfinite_loss_check_waits_but_names_the_first_bad_step(tmp_path):
    callback = StopOnNonFiniteLoss(str(tmp_path), check_every=10)
    _feed(callback, [0.5, 0.4, float("nan"), float("inf"), 0.3])  # no check yet: no sync
    (tmp_path / "last.ckpt").touch()
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 2 \(epoch 0, batch 2\);"
                       rf" the last good checkpoint is {tmp_path / 'last.ckpt'}"):
        callback.on_save_checkpoint(None, None, {})  # before the checkpoint is written

    every_third = StopOnNonFiniteLoss(None, check_every=3)
    with pytest.raises(NonFiniteLossError, match="loss is inf at step 4 .*no checkpoint"):
        _feed(every_third, [0.5, 0.4, 0.3, 0.2, float("inf"), 0.1])

    finite = StopOnNonFiniteLoss(None, check_every=2)
    _feed(finite, [0.5, 0.4, 0.3])
    finite.on_train_end(None, None)
    assert finite.kept == []


@pytest.mark.parametrize(("n_jobs", "cores", "at_once", "threads"), [
    (-1, 16, 16, 1), (-2, 16, 15, 1), (-12, 16, 5, 3), (4, 16, 4, 4), (3, 16, 3, 5),
    (1, 2, 1, 2), (2, 2, 2, 1), (8, 2, 8, 1), (-40, 4, 1, 4)])
def test_sweep_jobs_times_threads_stay_within_the_cores(n_jobs, cores, at_once, threads):
    assert cpu.jobs_at_once(n_jobs, cores) == at_once
    assert cpu.threads_per_job(n_jobs, cores) == threads
    assert at_once * threads <= cores or threads == 1


def _as_sweep_job(overrides: list[str]) -> None:
    """``HydraConfig`` as in a job of ``python train.py -m <overrides>``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)


def test_a_joblib_job_sets_its_threads_unless_the_user_did(monkeypatch):
    import joblib

    before = torch.get_num_threads()
    _as_sweep_job(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        expected = max(1, joblib.cpu_count() // 2)
        assert cpu.set_sweep_threads() == expected == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert cpu.set_sweep_threads() is None  # torch follows the user's setting
    finally:
        torch.set_num_threads(before)


def test_a_single_run_keeps_torchs_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    compose_cfg("train", [], tmp_path)
    assert cpu.set_sweep_threads() is None


@pytest.mark.e2e
def test_joblib_sweep_jobs_run_with_their_share_of_the_cores(tmp_path):
    import joblib

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["OVERGEN_LOG_DIR"] = str(tmp_path / "logs")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "experiment=rings2d", *TINY, "callbacks=none",
         "optimized_metric=null", "trainer.max_steps=3", "seed=1,2"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(p.read_text()) for p in (tmp_path / "logs").rglob("metrics.json")]
    assert len(runs) == 2
    expected = max(1, joblib.cpu_count() // 2)
    assert [r["run/hardware"]["torch_threads"] for r in runs] == [expected, expected]


def test_config_errors_cross_process_boundaries():
    # a joblib sweep's worker sends a job's ConfigError back to the launching process
    err = pickle.loads(pickle.dumps(ConfigError("model.sigma", -1, "a non-negative number")))
    assert (err.key, err.value, str(err)) == (
        "model.sigma", -1, "model.sigma=-1 is not allowed: a non-negative number")
