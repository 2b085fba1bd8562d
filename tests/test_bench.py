"""bench/run.py still runs: a renamed argument once broke bench/attack.py unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.e2e
def test_quick_bench_runs_every_row_and_writes_nothing(mnist_dir):
    results = ROOT / "bench" / "RESULTS.md"
    before = results.read_bytes()
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick",
                           "--threads", "1"], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip() for line in proc.stdout.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert {"1", "2", "3", "4", "6"} <= rows
    assert results.read_bytes() == before  # --quick never writes RESULTS.md
