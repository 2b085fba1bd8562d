"""results/reproduce.sh, results/ablation.sh and results/paper_scale.sh: every job they
launch composes, and a 2-job slice of the paper-scale protocol runs shrunk on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import CONF, ROOT
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

pytestmark = pytest.mark.e2e  # both run the scripts (bash), the second train.py too

LAUNCH_KEYS = ("hydra/launcher", "hydra.launcher.")


def commands(script: str) -> list[list[str]]:
    """The train.py command lines of ``results/<script> all`` (its ``DRY=1`` listing), as
    override lists without the launcher settings."""
    out = subprocess.run(["bash", str(ROOT / "results" / script), "all"], text=True,
                         capture_output=True, env={"EPOCHS": "10", **os.environ, "DRY": "1"},
                         check=True)
    lines = [line.split() for line in out.stdout.splitlines() if "train.py" in line]
    return [[o for o in line[line.index("train.py") + 1:]
             if o != "-m" and not o.startswith(LAUNCH_KEYS)] for line in lines]


def sweep_config(overrides: list[str]) -> list[str]:
    """The overrides Hydra composes a multirun's own config with: its sweep overrides
    (``a=x,y``, ``range(...)``) stripped, as ``hydra.main`` does before launching."""
    return [o.input_line for o in OverridesParser.create().parse_overrides(overrides)
            if not o.is_sweep_override()]


def jobs(overrides: list[str]) -> list[list[str]]:
    """One override list per job of the sweep ``overrides`` (Hydra's own expansion)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


# fig5: ocsvm + cool (+ deep_svdd in reproduce.sh), dAE (10 digits each); fig4: cnn + cool,
# dAE (K = 1..9 x subsets, and K = 10); table1: cnn + cool, dae_sym + dae_asym, at lr 1e-3
# cnn + cool and dae_sym; fig2. The ablation, by phase: 1-class 24 + 3 + 3 + 6, open set
# 8 + 4 + 4 + 8, ten digits 2 + 1 + 1; then 38, 24 and 5 (the script's comments list them).
@pytest.mark.parametrize("script,expected", [
    ("paper_scale.sh", 20 + 10 + (2 * 9 * 10 + 2) + (9 * 10 + 1) + 7 + 1),
    ("reproduce.sh", 30 + 10 + (2 * 9 * 3 + 2) + (9 * 3 + 1) + 7 + 1),
    ("ablation.sh", 36 + 24 + 4 + 38 + 24 + 5)])
def test_every_job_composes(script, expected):
    lines = commands(script)
    total = 0
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for line in lines:
            compose("train", overrides=sweep_config(line))  # train.py -m composes it first
            for i, job in enumerate(jobs(line)):
                cfg = compose("train", overrides=job)
                total += 1
                if i == 0:  # each line's first job builds its model and data module
                    assert instantiate(cfg.model) is not None
                    assert instantiate(cfg.data).num_classes == cfg.model.num_classes
    GlobalHydra.instance().clear()
    assert total == expected


def test_paper_scale_slice_runs_shrunk(tmp_path, mnist_dir):
    (line,) = [c for c in commands("paper_scale.sh") if "model=dae_oneclass" in c]
    line = [o.replace("range(0,10)", "0,1") for o in line if not o.startswith("logger=")]
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *line, "debug=tiny"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OVERGEN_LOG_DIR": str(tmp_path / "logs"),
                               "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.rglob("metrics.json"))]
    assert sorted(r["oneclass/digit"] for r in runs) == [0, 1]
    assert all(r["run/curvature"] == "exact" and r["run/steps"] == 3 for r in runs)
    assert all(0.0 <= r["oneclass/auroc"] <= 1.0 for r in runs)
