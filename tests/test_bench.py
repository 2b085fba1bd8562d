"""bench/run.py still runs: a renamed argument once broke bench/attack.py unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT


@pytest.mark.e2e
def test_quick_bench_runs_every_row_on_the_device_asked_and_writes_nothing(mnist_dir):
    results = ROOT / "bench" / "RESULTS.md"
    before = results.read_bytes()
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick",
                           "--threads", "1", "--device", "cpu"], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip() for line in proc.stdout.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert {"1", "2", "3", "4", "6", "7", "9"} <= rows
    assert "Device of rows 1-4, 6, 7 and 9: cpu  " in proc.stdout.splitlines()
    assert results.read_bytes() == before  # --quick never writes RESULTS.md


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bench_on_cuda_without_cuda_says_so_in_one_line():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick",
                           "--device", "cuda"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --device='cuda' is not allowed: no CUDA device")
    assert len(proc.stderr.strip().splitlines()) == 1 and not proc.stdout


@pytest.mark.parametrize("script, flag", [("run.py", "--eval-ckpt"), ("openset_eval.py", "--ckpt")])
def test_bench_with_a_missing_checkpoint_says_so_in_one_line(tmp_path, script, flag):
    missing = tmp_path / "last.ckpt"
    results = ROOT / "bench" / "RESULTS.md"
    before = results.read_bytes()
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), flag, str(missing)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and not proc.stdout
    assert proc.stderr == (f"error: {flag}={str(missing)!r} is not allowed: no such file "
                           "(a dae_sym checkpoint written by train.py)\n")
    assert results.read_bytes() == before
