"""Long sweeps: resume after a kill, sweeps that keep going and skip finished jobs, NaN stops,
multi-node settings, no secrets in run dirs. Each test runs train.py as users type it."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import ROOT, TINY, comparable, compose_cfg
from hydra import compose, initialize_config_dir

from overgen.checkpoints import RngStateInCheckpoint
from overgen.runs import job_lock

# the 2-D rings: a real training loop that runs ~100 steps/s on a CPU
RINGS = ["experiment=rings2d", "callbacks=test_accuracy", *TINY, "trainer.deterministic=true"]


# what a launched rank or an earlier in-process run may leave in this process's environment:
# a train.py started with them would take itself for a DDP rank
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "RANK",
              "PL_GLOBAL_SEED", "PL_SEED_WORKERS")


def _train(*args: str, log_dir: Path, env: dict | None = None, wait: bool = True,
           script: str = "train.py"):
    env = {**{k: v for k, v in os.environ.items() if k not in LAUNCH_ENV},
           "OVERGEN_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, str(ROOT / script), *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=log_dir.parent, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, cwd=log_dir.parent, capture_output=True, text=True,
                          timeout=600)


def _metrics(run_dirs) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dirs) if p.name == "metrics.json"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    # 1,500 steps span two epochs of 938 batches; checkpoints every 100 steps
    job = [*RINGS, "trainer.max_steps=1500", "checkpoint.every_n_train_steps=100"]
    full = _train(*job, log_dir=tmp_path / "a")
    assert full.returncode == 0, full.stderr[-2000:]

    killed = _train(*job, log_dir=tmp_path / "b", wait=False)
    ckpt_dir = tmp_path / "b" / "rings2d" / "runs"
    deadline = time.time() + 300
    while not list(ckpt_dir.glob("*/checkpoints/last.ckpt")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a little further into the epoch, then pull the plug
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (first,) = ckpt_dir.glob("*/checkpoints/last.ckpt")
    step = torch.load(first, weights_only=True)["global_step"]
    assert 0 < step < 1500 and step % 938 != 0, step  # mid-epoch
    assert not list(ckpt_dir.glob("*/metrics.json"))

    resumed = _train(*job, "resume=true", log_dir=tmp_path / "b")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    (a,) = _metrics((tmp_path / "a").rglob("metrics.json"))
    (b,) = _metrics((tmp_path / "b").rglob("metrics.json"))
    assert b["run/resumed_from"] and b["run/steps"] == 1500
    assert comparable(a) == comparable(b)


@pytest.mark.e2e
def test_sweep_keeps_going_records_failures_and_skips_finished_jobs(tmp_path):
    sweep = ["-m", "data=mnist_oneclass", "model=cool", "data.digit=1,10", *TINY,
             "trainer.max_steps=3", "trainer.limit_test_batches=1"]
    logs = tmp_path / "logs"
    first = _train(*sweep, log_dir=logs)
    assert first.returncode != 0  # the sweep reports its failed job
    done = list(logs.rglob("metrics.json"))
    (failed,) = logs.rglob("error.json")
    assert len(done) == 1 and "data.digit=10" in json.loads(failed.read_text())["message"]
    assert "data.digit=1" in (done[0].parent / ".hydra" / "overrides.yaml").read_text()

    again = _train(*sweep, log_dir=logs)
    assert again.returncode != 0
    assert len(list(logs.rglob("metrics.json"))) == 1  # the finished job is not re-run
    (skipped,) = logs.rglob("skipped.json")
    assert json.loads(skipped.read_text())["metrics_in"] == str(done[0].parent)
    assert len(list(logs.rglob("error.json"))) == 2  # the failed one is tried again

    forced = _train(*sweep, "overwrite=true", "data.digit=1", log_dir=logs)
    assert forced.returncode == 0
    assert len(list(logs.rglob("metrics.json"))) == 2


@pytest.mark.e2e
def test_nonfinite_loss_stops_at_its_step_and_keeps_last_good_checkpoint(tmp_path):
    proc = _train(*RINGS, "trainer.max_steps=200", "checkpoint.every_n_train_steps=2",
                  "model.optimizer._target_=torch.optim.SGD", "model.optimizer.lr=100",
                  "~model.optimizer.betas", log_dir=tmp_path / "logs")
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training stopped: loss is nan at step") or \
        line.startswith("error: training stopped: loss is inf at step"), proc.stderr[-2000:]
    step = int(line.split(" at step ")[1].split()[0])
    (ckpt,) = (tmp_path / "logs").rglob("last.ckpt")
    assert f"the last good checkpoint is {ckpt}" in line
    state = torch.load(ckpt, weights_only=True)
    assert 0 < state["global_step"] <= step
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
    assert not list((tmp_path / "logs").rglob("metrics.json"))


def test_slurm_launcher_and_multinode_trainer_compose(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2", "trainer.devices=4",
            "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=720"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert (launcher.partition, launcher.timeout_min) == ("gpu", 720)
    assert (cfg.trainer.strategy, cfg.trainer.num_nodes, cfg.trainer.devices) == ("ddp", 2, 4)


@pytest.mark.e2e
def test_no_secret_is_written_to_the_run_dir(tmp_path, mnist_dir):
    secret = "0123456789abcdef-fake-wandb-key-planted-by-the-test"
    proc = _train("model=cnn", *TINY, "logger=wandb", "trainer.max_steps=2",
                  "trainer.limit_test_batches=1", log_dir=tmp_path / "logs",
                  env={"WANDB_API_KEY": secret, "WANDB_MODE": "offline", "MY_TOKEN": secret})
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    assert any(p.name == "metrics.json" for p in files) and any("wandb" in p.parts for p in files)
    leaks = [p for p in files if secret.encode() in p.read_bytes()]
    assert not leaks


def test_wandb_run_id_is_fixed_and_reused_on_resume(tmp_path, mnist_dir):
    from overgen.tasks import _set_wandb_id

    cfg = compose_cfg("train", ["logger=wandb"], tmp_path)
    new = _set_wandb_id(cfg, None)
    assert new and cfg.logger.wandb.id == new and "resume" not in cfg.logger.wandb
    cfg = compose_cfg("train", ["logger=wandb"], tmp_path)
    assert _set_wandb_id(cfg, "abc123") == "abc123" and cfg.logger.wandb.resume == "allow"
    assert _set_wandb_id(compose_cfg("train", ["logger=csv"], tmp_path), "abc123") is None


@pytest.mark.e2e
def test_resume_without_earlier_run_starts_from_scratch(tmp_path):
    proc = _train(*RINGS, "trainer.max_steps=5", "resume=true", log_dir=tmp_path / "logs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (m,) = _metrics((tmp_path / "logs").rglob("metrics.json"))
    assert m["run/resumed_from"] is None and m["run/steps"] == 5


@pytest.mark.e2e
def test_ddp_multirun_one_dir_per_job_and_same_metrics_as_one_process(tmp_path, mnist_dir):
    logs = tmp_path / "logs"
    proc = _train("-m", "experiment=openset", "model=cnn", "+known=3", "data.subset=0,1",
                  "trainer=ddp", *TINY, "trainer.devices=2", "trainer.max_steps=3",
                  log_dir=logs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.parent for p in logs.rglob(".hydra"))
    assert [p.name for p in jobs] == ["0", "1"]  # no run dir of the other rank
    assert [len(list(j.glob("metrics.json"))) for j in jobs] == [1, 1]
    ddp = json.loads((jobs[1] / "metrics.json").read_text())
    assert ddp["run/train_classes"] != json.loads((jobs[0] / "metrics.json").read_text())[
        "run/train_classes"]
    # the same checkpoint evaluated by one process: the gathered metrics agree
    one = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), f"ckpt_path={jobs[1]}/checkpoints/last.ckpt",
         *TINY],
        env={**os.environ, "OVERGEN_LOG_DIR": str(tmp_path / "eval")}, capture_output=True,
        text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    (single,) = _metrics((tmp_path / "eval").rglob("metrics.json"))
    keys = [k for k in ddp if k.startswith(("test/", "openset/", "ood/"))]
    assert len(keys) > 10
    # Mahalanobis apart: its shared covariance is near-singular (near-dead units), so the
    # float32 rounding of other batch shapes under DDP moves its ranking slightly
    exact = [k for k in keys if not k.startswith("ood/mahalanobis/")]
    assert {k: single[k] for k in exact} == pytest.approx({k: ddp[k] for k in exact}, abs=1e-6)
    maha = [k for k in keys if k.startswith("ood/mahalanobis/")]
    assert maha and {k: single[k] for k in maha} == pytest.approx({k: ddp[k] for k in maha},
                                                                 abs=2e-3)


def test_job_identity_ignores_run_control_and_order(tmp_path):
    from overgen.runs import earlier_runs, job_overrides

    assert job_overrides(["model=cnn", "+known=3", "resume=true", "overwrite=true",
                          "ckpt_path=last", "hydra.launcher.n_jobs=2", "paths.log_dir=x"]) == \
        ["+known=3", "model=cnn"]
    jobs = [("a", "- model=cnn\n- +known=3\n"), ("b", "- +known=3\n- model=cool\n"),
            ("c", "- +known=3\n- resume=true\n- model=cnn\n")]
    for when, (name, overrides) in enumerate(jobs):
        file = tmp_path / name / ".hydra" / "overrides.yaml"
        file.parent.mkdir(parents=True)
        file.write_text(overrides)
        os.utime(file, (1e9 + when, 1e9 + when))
    found = earlier_runs(tmp_path, ["model=cnn", "+known=3"])
    assert [p.name for p in found] == ["c", "a"]  # newest first, cool is another job


@pytest.mark.e2e
def test_evaluate_py_locks_its_checkpoint_not_only_its_overrides(tmp_path):
    """While another process evaluates a.ckpt, evaluate.py runs b.ckpt (same overrides) and
    skips a.ckpt."""
    logs = tmp_path / "logs"
    assert _train(*RINGS, "trainer.max_steps=5", log_dir=logs).returncode == 0
    (last,) = logs.rglob("last.ckpt")
    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    shutil.copy(last, a)
    shutil.copy(last, b)
    with job_lock(logs / "evaluate", [], str(a)):  # evaluate.py ckpt_path=a.ckpt, running
        other = _train(f"ckpt_path={b}", log_dir=logs, script="evaluate.py")
        same = _train(f"ckpt_path={a}", log_dir=logs, script="evaluate.py")
    assert other.returncode == 0 and "skipped" not in other.stderr, other.stderr[-2000:]
    assert len(list((logs / "evaluate").rglob("metrics.json"))) == 1
    assert same.returncode == 0
    assert same.stderr.strip().splitlines()[-1].startswith("skipped: this job runs in process ")


@pytest.mark.e2e
def test_parallel_joblib_sweep_writes_one_result_per_job(tmp_path, mnist_dir):
    logs = tmp_path / "logs"
    proc = _train("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "experiment=openset",
                  "model=cnn,cool", "+known=3", *TINY, "trainer.max_steps=3",
                  "trainer.limit_test_batches=1", log_dir=logs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = _metrics(logs.rglob("metrics.json"))
    assert sorted(m["run/model"] for m in runs) == ["cnn", "cool"]
    assert all(m["openset/known"] == 3 for m in runs)


def test_atomic_write_leaves_old_file_whole_when_interrupted(tmp_path, monkeypatch):
    from overgen.utils import io

    path = tmp_path / "metrics.json"
    io.atomic_write_json(str(path), {"test/acc": 0.5})
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    def crash(fd):  # the process dies after writing, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_json(str(path), {"test/acc": 0.9, "big": "x" * 1_000_000})
    assert json.loads(path.read_text()) == {"test/acc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


@pytest.mark.e2e
@pytest.mark.parametrize("key", ["resume", "overwrite"])
def test_run_control_keys_must_be_booleans(key, tmp_path):
    proc = _train(*RINGS, f"{key}=maybe", log_dir=tmp_path / "logs")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == \
        f"error: {key}='maybe' is not allowed: true or false"
    assert not list((tmp_path / "logs").rglob("checkpoints"))


@pytest.mark.e2e
def test_resume_from_a_corrupt_checkpoint_stops_and_keeps_it(tmp_path):
    logs = tmp_path / "logs"
    first = _train(*RINGS, "trainer.max_steps=5", log_dir=logs)
    assert first.returncode == 0, first.stderr[-2000:]
    (ckpt,) = logs.rglob("last.ckpt")
    (metrics,) = logs.rglob("metrics.json")
    metrics.unlink()  # an unfinished run: resume will pick its checkpoint
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # cut short, as by a kill mid-write
    before = ckpt.read_bytes()
    proc = _train(*RINGS, "trainer.max_steps=5", "resume=true", log_dir=logs)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: ckpt_path={str(ckpt)!r} is not a readable checkpoint"), line
    assert ckpt.read_bytes() == before and not list(logs.rglob("metrics.json"))


@pytest.mark.e2e
def test_second_launch_of_a_live_job_is_skipped_and_a_dead_one_holds_no_lock(tmp_path):
    logs = tmp_path / "logs"
    job = [*RINGS, "trainer.max_steps=50000", "checkpoint.every_n_train_steps=100"]
    first = _train(*job, log_dir=logs, wait=False)
    deadline = time.time() + 300
    while not list(logs.rglob("last.ckpt")) and time.time() < deadline:
        time.sleep(0.05)
    second = _train(*job, "resume=true", log_dir=logs)
    assert second.returncode == 0, second.stderr[-2000:]
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith("skipped: this job runs in process "), line
    assert f":{first.pid} already (it holds {logs / 'rings2d' / '.locks'}" in line, line
    assert len(list(logs.rglob("last.ckpt"))) == 1  # the second launch did nothing

    first.send_signal(signal.SIGKILL)
    first.wait()
    third = _train(*job, "resume=true", log_dir=logs, wait=False)  # the lock died with it
    while len(list(logs.rglob("last.ckpt"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=60) == 143, third.stderr.read()[-2000:]


@pytest.mark.e2e
def test_unreadable_metrics_count_as_unfinished_and_are_named(tmp_path):
    logs = tmp_path / "logs"
    first = _train(*RINGS, "trainer.max_steps=5", log_dir=logs)
    assert first.returncode == 0, first.stderr[-2000:]
    (metrics,) = logs.rglob("metrics.json")
    whole = json.loads(metrics.read_text())
    metrics.write_text(metrics.read_text()[:100])  # cut short, as by a full disk
    again = _train(*RINGS, "trainer.max_steps=5", "resume=true", log_dir=logs)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{metrics} is unreadable" in again.stdout + again.stderr
    (new,) = _metrics(p for p in logs.rglob("metrics.json") if p != metrics)
    assert new["run/resumed_from"] and new["run/steps"] == 5  # evaluated again, not trained
    assert comparable(new) == comparable(whole)


@pytest.mark.e2e
def test_unwritable_log_dir_fails_before_any_work(tmp_path):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log dir should be\n")  # root writes any folder
    for sweep in ([], ["-m"]):
        proc = _train(*sweep, *RINGS, "trainer.max_steps=5", log_dir=blocker)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1] == (
            f"error: paths.log_dir={str(blocker)!r} is not allowed: a folder this user can "
            "write (FileExistsError: File exists)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


@pytest.mark.e2e
@pytest.mark.parametrize("devices", ["auto", "2,gpu"])
def test_slurm_launcher_needs_a_number_of_devices_before_submitting(devices, tmp_path):
    proc = _train("-m", "hydra/launcher=slurm", "trainer=ddp", f"trainer.devices={devices}",
                  *RINGS, log_dir=tmp_path / "logs")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: trainer.devices={devices.split(',')[-1]!r} is not allowed: a positive whole "
        "number with hydra/launcher=slurm (SLURM's nodes, tasks and GPUs per node)")
    assert not (tmp_path / "logs").exists()  # nothing submitted, no sweep dir


def _seeds(rank: int) -> tuple[int, int, int]:
    """Each rank's own seeds of torch, numpy and Python."""
    return 100 + rank, 200 + rank, 300 + rank


def _rng_worker(rank: int, world: int, port: int, ckpt: str) -> None:
    """Each rank seeds its generators its own way and saves them in a checkpoint (written
    by rank 0, as Lightning does); then, as a resumed process, loads it and draws."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    cb, trainer = RngStateInCheckpoint(), SimpleNamespace(global_rank=rank)
    torch_seed, numpy_seed, python_seed = _seeds(rank)
    torch.manual_seed(torch_seed)
    np.random.seed(numpy_seed)
    random.seed(python_seed)
    checkpoint: dict = {}
    cb.on_save_checkpoint(trainer, None, checkpoint)
    if rank == 0:
        torch.save(checkpoint, ckpt)
    dist.barrier()
    torch.manual_seed(0)  # a fresh process: every rank alike
    np.random.seed(0)
    random.seed(0)
    cb.on_load_checkpoint(trainer, None, torch.load(ckpt, weights_only=True))
    drawn = [torch.rand(3).tolist(), np.random.rand(3).tolist(),
             [random.random() for _ in range(3)]]
    Path(f"{ckpt}.rank{rank}.json").write_text(json.dumps(drawn))
    dist.destroy_process_group()


@pytest.mark.slow  # two fresh interpreters
@pytest.mark.e2e
def test_each_ddp_rank_resumes_its_own_random_state(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    mp.spawn(_rng_worker, args=(2, _free_port(), str(ckpt)), nprocs=2)
    for rank in (0, 1):
        torch_seed, numpy_seed, python_seed = _seeds(rank)
        python = random.Random(python_seed)
        want = [torch.rand(3, generator=torch.Generator().manual_seed(torch_seed)).tolist(),
                np.random.RandomState(numpy_seed).rand(3).tolist(),
                [python.random() for _ in range(3)]]
        assert json.loads(Path(f"{ckpt}.rank{rank}.json").read_text()) == want


@pytest.mark.e2e
def test_sigterm_to_a_ddp_job_stops_every_rank_and_resume_equals_uninterrupted(tmp_path):
    """SIGTERM to the first process (Lightning passes it on to the other rank): both ranks
    stop after the same training batch and save one checkpoint together; one line from
    the first rank; resume=true ends with an uninterrupted DDP run's metrics."""
    # 3,000 steps: the signal lands in training (300 took under a second once training got
    # faster). Before StopOnSignal took SIGTERM back from Lightning, about half of these
    # runs deadlocked (Lightning's handler broadcast inside Lightning's per-step broadcast)
    job = [*RINGS, "trainer=ddp", "trainer.devices=2", "trainer.max_steps=3000",
           "checkpoint.every_n_train_steps=50000"]
    full = _train(*job, log_dir=tmp_path / "a")
    assert full.returncode == 0, full.stderr[-3000:]

    logs = tmp_path / "b"
    proc = _train(*job, log_dir=logs, wait=False)
    deadline = time.time() + 300
    while not any("train/" in p.read_text() for p in logs.rglob("metrics.csv")):
        assert proc.poll() is None and time.time() < deadline, "no training step logged"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    (ckpt,) = logs.rglob("last.ckpt")
    step = torch.load(ckpt, weights_only=True)["global_step"]
    assert 0 < step < 3000, step
    lines = [line for line in err.splitlines() if line.startswith("stopped by SIGTERM")]
    assert len(lines) == 1 and lines[0].startswith(
        f"stopped by SIGTERM: saved {ckpt} at training step {step}; continue with: "), lines

    resumed = _train(*job, "resume=true", log_dir=logs)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (a,) = _metrics((tmp_path / "a").rglob("metrics.json"))
    (b,) = _metrics(logs.rglob("metrics.json"))
    assert b["run/resumed_from"] == str(ckpt) and b["run/steps"] == 3000
    assert comparable(a) == comparable(b)


def _children(pid: int) -> list[int]:
    return [int(child) for path in Path(f"/proc/{pid}/task").glob("*/children")
            for child in path.read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc needed")
@pytest.mark.e2e
def test_sigterm_to_a_joblib_sweep_stops_the_jobs_in_its_workers(tmp_path):
    """Before, the launcher died alone and its workers trained on; now each job saves its
    step and stops, the workers end, and the sweep exits 143."""
    logs = tmp_path / "logs"
    proc = _train("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *RINGS,
                  "trainer.max_steps=50000", "seed=1,2", log_dir=logs, wait=False)
    deadline = time.time() + 300
    while sum("train/" in p.read_text() for p in logs.rglob("metrics.csv")) < 2:
        assert proc.poll() is None and time.time() < deadline, "the two jobs did not train"
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    ckpts = sorted(logs.rglob("last.ckpt"))
    assert len(ckpts) == 2
    for ckpt in ckpts:
        step = torch.load(ckpt, weights_only=True)["global_step"]
        log = (ckpt.parent.parent / "train.log").read_text()
        assert f"stopped by SIGTERM: saved {ckpt} at training step {step}; " in log
        assert 0 < step < 50000
    assert not list(logs.rglob("metrics.json"))
    deadline = time.time() + 60
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def test_stop_on_signal_takes_sigterm_back_from_lightning_under_ddp():
    """Lightning's SIGTERM handler broadcasts from inside the handler (a deadlock when the
    signal lands in a collective); under DDP the callback puts back a handler that only
    records and passes the signal on, and leaves a one-process run's handlers alone."""
    from overgen.stopping import StopOnSignal
    from overgen.utils import stop

    def lightning(signum, frame) -> None:  # stands in for Lightning's handler
        pass

    previous = {s: signal.getsignal(s) for s in stop.SIGNALS}
    try:
        for s in stop.SIGNALS:
            signal.signal(s, lightning)
        StopOnSignal().on_train_start(SimpleNamespace(world_size=1), None)
        assert all(signal.getsignal(s) is lightning for s in stop.SIGNALS)
        StopOnSignal().on_test_start(SimpleNamespace(world_size=2), None)
        assert all(signal.getsignal(s) is stop._pass_on for s in stop.SIGNALS)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
