"""Stop and continue: SIGTERM / SIGINT end train.py and evaluate.py within seconds, saying
what they saved, and ``resume=true`` continues to the result of an uninterrupted run; a job
killed after its training is resumed at evaluation, never trained again. Real signals to
real train.py and evaluate.py processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY, comparable
from test_reliability import RINGS, _metrics, _train

pytestmark = pytest.mark.e2e  # every test signals real train.py / evaluate.py processes

# a small attack on a CNN trained for 40 steps: ~600 updates of 10 trials, some fooled
# at each threshold, in a few seconds on a CPU; its state saved every 50 updates
FOOL = ["experiment=fooling", "model=cnn", *TINY, "trainer.max_steps=40",
        "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1",
        "callbacks.fooling.digits=[0,1,2,3,4]", "callbacks.fooling.trials_per_digit=2",
        "callbacks.fooling.max_steps=600", "callbacks.fooling.lr=0.00001",
        "callbacks.fooling.thresholds=[0.9,0.99]", "callbacks.fooling.save_every=50"]
# the open-set evaluation of a dAE with Hutchinson's curvature (random probes): 12 test
# batches of 32, each scored in a fraction of a second on a CPU, saved after each batch
EVAL = ["experiment=openset", "+known=3", "model=dae_sym", "+curvature=hutchinson", *TINY,
        "trainer.max_steps=2", "trainer.limit_test_batches=12", "data.eval_batch_size=32",
        "test_progress.save_every_s=0"]
EXIT_WITHIN = 10  # seconds from the signal to the process's end


def _start(*args: str, log_dir: Path, script: str = "train.py") -> tuple[subprocess.Popen, Path]:
    """``script`` in the background; stderr goes to a file (a pipe nobody reads can fill)."""
    err = log_dir.parent / f"stderr-{time.monotonic_ns()}.txt"
    env = {**os.environ, "OVERGEN_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / script), *args], env=env,
                            cwd=log_dir.parent, stdout=subprocess.DEVNULL,
                            stderr=err.open("w"))
    return proc, err


def _wait_for(found, proc: subprocess.Popen, what: str, timeout: float = 300):
    deadline = time.time() + timeout
    while not (hit := found()):
        assert proc.poll() is None, f"the process ended (code {proc.returncode}) before {what}"
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)
    return hit


def _stop(proc: subprocess.Popen, signum: int) -> float:
    """Send ``signum``; the seconds until the process ended."""
    proc.send_signal(signum)
    start = time.time()
    proc.wait(timeout=60)
    return time.time() - start


def _state_step(path: Path) -> int:
    return torch.load(path, weights_only=True)["step"]


def test_sigterm_during_fit_saves_its_step_and_resume_equals_uninterrupted(tmp_path):
    # no periodic checkpoint: the only one is the stop's. 5,000 steps (about 5 s here) leave
    # the signal seconds to land inside fit after the first logged values (step 100); with
    # 1,000 (1 s) it once landed after fit under CI load, where no checkpoint is saved.
    job = [*RINGS, "trainer.max_steps=5000", "checkpoint.every_n_train_steps=10000"]
    full = _train(*job, log_dir=tmp_path / "a")
    assert full.returncode == 0, full.stderr[-2000:]

    logs = tmp_path / "b"
    proc, err = _start(*job, log_dir=logs)
    # training has logged its first values (the file itself exists from the start: the
    # loggers receive the run's config before training)
    _wait_for(lambda: any("train/" in p.read_text() for p in logs.rglob("metrics.csv")),
              proc, "training steps")
    assert _stop(proc, signal.SIGTERM) < EXIT_WITHIN
    assert proc.returncode == 143, err.read_text()[-2000:]
    line = err.read_text().strip().splitlines()[-1]
    ckpts = list(logs.rglob("last.ckpt"))
    assert len(ckpts) == 1, line  # none: the signal came after fit (the line says where)
    (ckpt,) = ckpts
    step = torch.load(ckpt, weights_only=True)["global_step"]
    assert 0 < step < 5000, step
    assert line.startswith(f"stopped by SIGTERM: saved {ckpt} at training step {step}; "
                           "continue with: python "), line
    assert line.endswith(" checkpoint.every_n_train_steps=10000 resume=true"), line

    resumed = _train(*job, "resume=true", log_dir=logs)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (a,) = _metrics((tmp_path / "a").rglob("metrics.json"))
    (b,) = _metrics(logs.rglob("metrics.json"))
    assert b["run/resumed_from"] == str(ckpt) and b["run/steps"] == 5000
    assert comparable(a) == comparable(b)


def test_sigint_while_scoring_exact_curvature_stops_within_seconds(tmp_path, mnist_dir):
    """The open-set callback scores all 64 images of the test batch with the dAE's exact
    curvature (minutes on a CPU); the per-sample check stops it."""
    logs = tmp_path / "logs"
    proc, err = _start("experiment=openset", "model=dae_sym", "+known=3", *TINY,
                       "trainer.max_steps=1", "trainer.limit_test_batches=1", log_dir=logs)
    (ckpt,) = _wait_for(lambda: list(logs.rglob("last.ckpt")), proc, "the trained model")
    time.sleep(3)  # well into the test batch
    assert _stop(proc, signal.SIGINT) < EXIT_WITHIN
    assert proc.returncode == 130, err.read_text()[-2000:]
    line = err.read_text().strip().splitlines()[-1]
    assert line.startswith(f"stopped by SIGINT: saved the trained model in {ckpt}; "
                           "continue with: python "), line
    assert line.endswith(" trainer.limit_test_batches=1 resume=true"), line
    assert not list(logs.rglob("metrics.json"))


def test_attack_stopped_and_killed_continues_to_the_uninterrupted_result(tmp_path, mnist_dir):
    """SIGTERM mid-attack saves it; the resumed job skips training, continues the attack
    from that update and is SIGKILLed mid-attack in turn; the next resume continues from
    the newer state. The result equals one uninterrupted run's."""
    full = _train(*FOOL, log_dir=tmp_path / "a")
    assert full.returncode == 0, full.stderr[-2000:]
    (want,) = _metrics((tmp_path / "a").rglob("metrics.json"))
    assert 0 < want["fooling/rate@0.99"] < want["fooling/rate@0.90"]

    logs = tmp_path / "b"
    proc, err = _start(*FOOL, log_dir=logs)
    (state,) = _wait_for(lambda: list(logs.rglob("fooling_state.pt")), proc, "a saved attack")
    assert _stop(proc, signal.SIGTERM) < EXIT_WITHIN
    assert proc.returncode == 143, err.read_text()[-2000:]
    first = _state_step(state)
    ckpt = state.parent / "last.ckpt"
    line = err.read_text().strip().splitlines()[-1]
    progress = state.parent / "test_progress.pt"  # the test batch, scored before the attack
    assert line.startswith(f"stopped by SIGTERM: saved the trained model in {ckpt} and the "
                           f"scores of 1 test batch in {progress} and the fooling attack at "
                           f"update {first} in {state}; continue with: ")
    assert line.endswith(" resume=true") and 50 <= first < 600, (line, first)
    trained = ckpt.read_bytes()

    proc, err = _start(*FOOL, "resume=true", log_dir=logs)
    _wait_for(lambda: _state_step(state) > first, proc, "a newer saved attack")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    second = _state_step(state)
    assert any(f"continuing from {state} at update {first}" in log.read_text()
               for log in logs.rglob("train.log"))  # the job's own log

    resumed = _train(*FOOL, "resume=true", log_dir=logs)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"continuing from {state} at update {second}" in resumed.stdout + resumed.stderr
    assert f"test: 0 test batches scored here, 1 read from {progress}" in (resumed.stdout
                                                                         + resumed.stderr)
    (got,) = _metrics(logs.rglob("metrics.json"))
    assert {k: v for k, v in got.items() if k.startswith(("fooling/", "test/"))} == \
        {k: v for k, v in want.items() if k.startswith(("fooling/", "test/"))}
    # evaluation only: the same steps, no training logged, the checkpoint untouched
    assert got["run/steps"] == want["run/steps"] == 40 and got["run/resumed_from"] == str(ckpt)
    assert ckpt.read_bytes() == trained and len(list(logs.rglob("last.ckpt"))) == 1
    assert not progress.exists()
    later = [csv for csv in logs.rglob("metrics.csv") if ckpt.parent.parent not in csv.parents]
    assert later and not any("train/" in csv.read_text() for csv in later)


def test_sigterm_during_evaluation_keeps_scored_batches_and_resume_equals_uninterrupted(
        tmp_path, mnist_dir):
    """SIGTERM after some test batches saves their scores; the resumed job trains nothing,
    scores only the other batches and ends with an uninterrupted run's metrics.json."""
    full = _train(*EVAL, log_dir=tmp_path / "a")
    assert full.returncode == 0, full.stderr[-2000:]
    (want,) = _metrics((tmp_path / "a").rglob("metrics.json"))
    assert not list((tmp_path / "a").rglob("test_progress.pt"))  # gone once finished

    logs = tmp_path / "b"
    proc, err = _start(*EVAL, log_dir=logs)
    (progress,) = _wait_for(lambda: list(logs.rglob("test_progress.pt")), proc,
                            "a scored test batch")
    assert _stop(proc, signal.SIGTERM) < EXIT_WITHIN
    assert proc.returncode == 143, err.read_text()[-2000:]
    scored = len(torch.load(progress, weights_only=True)["batches"])
    assert 0 < scored < 12, scored
    ckpt = progress.parent / "last.ckpt"
    line = err.read_text().strip().splitlines()[-1]
    assert line.startswith(f"stopped by SIGTERM: saved the trained model in {ckpt} and the "
                           f"scores of {scored} test batches in {progress}; continue with: ")
    trained = ckpt.read_bytes()

    resumed = _train(*EVAL, "resume=true", log_dir=logs)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (f"test: {12 - scored} test batches scored here, {scored} read from {progress}"
            in resumed.stdout + resumed.stderr)
    (got,) = _metrics(logs.rglob("metrics.json"))
    assert got["run/resumed_from"] == str(ckpt) and got["run/steps"] == 2
    assert comparable(got) == comparable(want)
    assert ckpt.read_bytes() == trained and not progress.exists()
    later = [csv for csv in logs.rglob("metrics.csv") if ckpt.parent.parent not in csv.parents]
    assert later and not any("train/" in csv.read_text() for csv in later)


def test_sigterm_during_evaluate_py_keeps_scored_batches_and_resume_equals_uninterrupted(
        tmp_path, mnist_dir):
    """evaluate.py keeps its finished test batches in its job's folder: the same command
    with resume=true, in a new run dir, scores only the others and ends with the
    metrics.json of an uninterrupted evaluation of the checkpoint."""
    trained = _train(*[o for o in EVAL if not o.startswith("trainer.limit_test_batches")],
                     "trainer.limit_test_batches=1", log_dir=tmp_path / "train")
    assert trained.returncode == 0, trained.stderr[-2000:]
    (ckpt,) = (tmp_path / "train").rglob("last.ckpt")
    job = [f"ckpt_path={ckpt}", "debug=tiny", "trainer.limit_test_batches=12",
           "data.eval_batch_size=32", "test_progress.save_every_s=0"]

    def evaluate(*args: str, log_dir: Path) -> dict:
        proc, err = _start(*job, *args, log_dir=log_dir, script="evaluate.py")
        assert proc.wait(timeout=600) == 0, err.read_text()[-2000:]
        return _metrics(log_dir.rglob("metrics.json"))[-1]

    want = evaluate(log_dir=tmp_path / "a")
    assert not list((tmp_path / "a").rglob("test_progress.pt"))  # gone once finished

    logs = tmp_path / "b"
    proc, err = _start(*job, log_dir=logs, script="evaluate.py")
    (progress,) = _wait_for(lambda: list(logs.rglob("test_progress.pt")), proc,
                            "a scored test batch")
    _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err.read_text()[-2000:]
    assert progress.parent.parent == logs / "evaluate" / ".progress"  # not in the run dir
    scored = len(torch.load(progress, weights_only=True)["batches"])
    assert 0 < scored < 12, scored
    line = err.read_text().strip().splitlines()[-1]
    assert line.startswith(f"stopped by SIGTERM: saved the scores of {scored} test batches in "
                           f"{progress}; continue with: ") and line.endswith(" resume=true")

    got = evaluate("resume=true", log_dir=logs)
    assert any(f"test: {12 - scored} test batches scored here, {scored} read from {progress}"
               in log.read_text() for log in logs.rglob("evaluate.log"))
    assert len(list(logs.rglob("metrics.json"))) == 1 and not progress.exists()
    assert comparable(got) == comparable(want)


def test_the_same_signal_twice_at_once_is_one_and_a_later_one_ends_the_process(tmp_path):
    """A signal sent to a whole process group and passed on by its first process arrives
    twice within moments: one stop. A second one later ends the process at once."""
    code = ("import os, signal, time\n"
            "from overgen.utils import stop\n"
            "stop.install()\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "print('stop requested:', stop.received() == signal.SIGTERM, flush=True)\n"
            "time.sleep(stop.SAME_SIGNAL_S + 0.5)\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "time.sleep(30)\n"
            "print('still running')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout == "stop requested: True\n", proc.stdout + proc.stderr
    assert proc.returncode == -signal.SIGTERM
