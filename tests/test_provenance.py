"""Where a run's numbers came from (commit, versions, hardware, size limits) and what the
console shows at its start and end."""

from __future__ import annotations

import logging
import os
import platform
import subprocess

import hydra
import pytest
import pytorch_lightning
import torch
from helpers import TINY, compose_cfg

import overgen
from overgen.tasks import train
from overgen.utils import provenance
from overgen.utils.entry import run_task
from overgen.utils.paths import PATH_KEYS
from overgen.utils.provenance import git_commit, hardware, headline, run_provenance, versions


def _git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_git_commit_of_a_clean_a_dirty_and_no_checkout(tmp_path):
    assert git_commit(tmp_path) is None
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("untracked files are not changes\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "+dirty"


def test_a_run_records_the_commit_its_code_was_imported_from(monkeypatch):
    """A checkout moved while a sweep runs (``git checkout`` of another commit) must not
    rename the code that the sweep's later jobs still run."""
    imported = git_commit()
    assert provenance.LOADED_COMMIT == imported
    moved = "0" * 40
    monkeypatch.setattr(provenance, "_git",
                        lambda source, *args: moved if args[0] == "rev-parse" else "")
    assert git_commit() == moved
    assert run_provenance() == {"run/git_commit": imported, "run/versions": versions(),
                                "run/hardware": hardware()}


def test_versions_and_hardware():
    assert versions() == {"torch": torch.__version__,
                          "pytorch_lightning": pytorch_lightning.__version__,
                          "hydra": hydra.__version__, "overgen": overgen.__version__,
                          "python": platform.python_version()}
    found = hardware()
    assert found["torch_threads"] == torch.get_num_threads() and found["cpu"]
    assert found["gpu_count"] == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert (found["gpu"] is None) == (not torch.cuda.is_available())


def test_headline_shows_the_numbers_that_exist_and_the_time():
    metrics = {"test/acc": 0.98765, "test/acc@0.90": 0.9, "test/mse": 0.01,
               "openset/f1": 0.5, "fooling/rate@0.99": 0.25, "fooling/steps@0.99": 80.0,
               "oneclass/auroc": None, "run/seconds": 12.345}
    assert headline(metrics) == ("test/acc=0.9877 test/acc@0.90=0.9000 openset/f1=0.5000 "
                                 "fooling/rate@0.99=0.2500 in 12.3 s")
    assert headline({}) == "no headline numbers"


def test_console_shows_the_run_dir_first_and_the_headline_last(tmp_path, caplog,
                                                               monkeypatch):
    for env in PATH_KEYS.values():  # run_task exports the paths; restored after the test
        monkeypatch.setenv(env, os.environ.get(env, ""))
    cfg = compose_cfg("train", [*TINY, f"paths.log_dir={tmp_path}"], tmp_path / "run")
    with caplog.at_level(logging.INFO, logger="overgen"):
        run_task(lambda c: {"test/acc": 0.5, "run/seconds": 2.0}, cfg)
    lines = [r.getMessage() for r in caplog.records if r.name == "overgen"]
    assert lines[0] == f"run dir: {tmp_path / 'run'}"
    assert lines[-1] == "done: test/acc=0.5000 in 2.0 s"


@pytest.mark.e2e
def test_metrics_record_time_commit_versions_hardware_and_size(tmp_path, mnist_dir):
    cfg = compose_cfg("train", [*TINY, "trainer.max_steps=5", "trainer.limit_test_batches=2",
                                "data.batch_size=16", "data.eval_batch_size=16"], tmp_path)
    metrics = train(cfg)
    assert 0 < metrics["run/seconds"] < 600
    assert metrics["run/git_commit"] == git_commit()
    assert metrics["run/versions"] == versions()
    assert metrics["run/hardware"] == hardware()
    assert (metrics["run/max_steps"], metrics["run/steps"]) == (5, 5)
    assert (metrics["run/limit_test_batches"], metrics["run/test_images"]) == (2, 32)
    assert metrics["run/max_epochs"] == cfg.trainer.max_epochs
