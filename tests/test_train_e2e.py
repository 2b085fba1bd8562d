"""train.py / evaluate.py end to end on the real configs with tiny settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, TINY, comparable, compose_cfg

import overgen
from overgen.errors import ConfigError
from overgen.models import DAEClassifier, SeparateDAEClassifier
from overgen.tasks import evaluate, train

FAST = [*TINY, "trainer.max_steps=20", "trainer.limit_test_batches=2", "data.batch_size=32"]


@pytest.mark.e2e
def test_rings_figure_and_confidence(tmp_path, monkeypatch):
    import overgen.callbacks.rings_figure as rings_cb

    titles = []
    draw = rings_cb.rings_figure
    monkeypatch.setattr(rings_cb, "rings_figure",
                        lambda *a: titles.append(a[-1]) or draw(*a))
    cfg = compose_cfg("train", ["experiment=rings2d", *TINY, "trainer.max_steps=1500",
                                "callbacks.rings_figure.resolution=40"], tmp_path)
    metrics = train(cfg)
    assert os.path.getsize(tmp_path / "rings2d.png") > 10_000
    assert metrics["figure/rings2d"] == str(tmp_path / "rings2d.png")
    assert json.loads((tmp_path / "metrics.json").read_text())["run/steps"] == 1500
    assert metrics["test/acc"] > 0.95
    # re-drawn from the checkpoint alone: the title counts the checkpoint's training steps
    evaluate(compose_cfg("evaluate", [f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}",
                                      *TINY], tmp_path / "eval"))
    assert [t.split(" training steps")[0] for t in titles] == ["1500", "1500"]


@pytest.mark.e2e
def test_rings_confidence_high_on_rings_low_at_centres_and_far(tmp_path):
    cfg = compose_cfg("train", ["experiment=rings2d", *TINY, "trainer.max_steps=1500",
                                "callbacks=none"], tmp_path)
    from hydra.utils import instantiate

    from overgen.data.rings import sample_rings

    torch.manual_seed(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    trainer.fit(model, datamodule=dm)
    model.eval()
    on_ring = model.confidence(sample_rings(50)[0]).median()
    centres = model.confidence(torch.tensor([[-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
    far = model.confidence(torch.tensor([[-1.0, -1.0], [2.5, 2.5]]))
    assert on_ring > centres.max() and on_ring > far.max()


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["dae_sym", "dae_separate"])
def test_mnist_train_then_evaluate_checkpoint(name, tmp_path, mnist_dir):
    run = tmp_path / "train"
    cfg = compose_cfg("train", [f"model={name}", "data=mnist_openset", "+known=3",
                                "+curvature=hutchinson", "model.probes=2", *FAST], run)
    metrics = train(cfg)
    for key in ("test/acc", "test/acc@0.90", "test/acc@0.99", "test/mse", "openset/f1"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["run/curvature"] == "hutchinson"
    assert metrics["run/train_classes"] == cfg.data.known_classes or len(
        metrics["run/train_classes"]) == 3
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.exists()
    cfg_eval = compose_cfg("evaluate", [f"ckpt_path={ckpt}", *TINY,
                                        "trainer.limit_test_batches=2"], tmp_path / "eval")
    again = evaluate(cfg_eval)
    assert again["run/train_classes"] == metrics["run/train_classes"]
    assert (again["run/model"], again["run/data"]) == (name, "mnist_openset")
    for key in ("run/steps", "run/epochs"):
        assert again[key] == metrics[key]
    assert metrics["run/sigma"] == 0.2 and "+known=3" in metrics["run/overrides"]
    for m in (metrics, again):  # the alpha paired with each threshold (conf/model/<name>.yaml)
        assert (m["run/alpha"], m["run/alpha@0.90"], m["run/alpha@0.99"]) == (20.0, 20.0, 3.0)
    for key in ("test/acc", "test/acc@0.90", "test/acc@0.99", "test/mse", "openset/f1"):
        assert again[key] == pytest.approx(metrics[key])
    assert again["run/curvature"] == "hutchinson"  # +curvature came with the saved model
    model = overgen.load(str(ckpt))  # the run's own config: the dAE with Hutchinson, 2 probes
    assert not model.training and (model.curvature_method, model.probes) == ("hutchinson", 2)
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert type(model) is {"dae_sym": DAEClassifier, "dae_separate": SeparateDAEClassifier}[name]
    lightning = type(model).load_from_checkpoint(ckpt)  # Lightning's convention
    x = torch.rand(8, 1, 28, 28)
    scores = []
    for m in (model, lightning):
        torch.manual_seed(0)  # the same Hutchinson probes
        scores.append(m.class_scores(x, gate=False))
    assert torch.equal(*scores)


@pytest.mark.e2e
def test_bf16_mixed_run_scores_as_its_checkpoint_in_float32(tmp_path, mnist_dir):
    """``trainer.precision=bf16-mixed`` trains under bf16 autocast, and its test phase
    still scores in float32: the checkpoint evaluated with ``32-true`` gives the same
    test metrics (under autocast the per-pixel error would move by ~1e-3 relative)."""
    run = tmp_path / "train"
    metrics = train(compose_cfg("train", ["model=dae_sym", "+curvature=hutchinson",
                                          "model.probes=2", *FAST,
                                          "trainer.precision=bf16-mixed"], run))
    again = evaluate(compose_cfg("evaluate", [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                                              *TINY, "trainer.limit_test_batches=2"],
                                 tmp_path / "eval"))
    for key in ("test/acc", "test/acc@0.90", "test/acc@0.99", "test/mse", "test/loss"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-6, abs=0), key


def test_unpaired_threshold_is_refused_before_any_work(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["model=dae_sym", *FAST], tmp_path)
    cfg.model.alpha_at = {0.9: 20.0}
    with pytest.raises(ConfigError, match=r"^model.alpha_at=\{0.9: 20.0\} is not allowed: an "
                                          r"alpha paired with every threshold of "
                                          r"callbacks.test_accuracy.thresholds; unpaired: "
                                          r"0.99$"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("model", [["model=cool"],
                                   ["model=dae_sym", "model.curvature=hutchinson"]])
def test_same_seed_same_numbers(model, tmp_path, mnist_dir):
    runs = []
    for name in ("a", "b"):
        cfg = compose_cfg("train", [*model, *FAST], tmp_path / name)
        train(cfg)
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert comparable(runs[0]) == comparable(runs[1])


def _cli(script: str, *args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OVERGEN_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run([sys.executable, str(ROOT / script), *args, "logger=csv"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


BAD_INPUTS = [
    (["data=mnist_openset", "+known=0"], "known=0"),
    (["data=mnist_openset", "+known=11"], "known=11"),
    (["data=mnist_openset", "data.known_classes=[3,3]"], "data.known_classes=[3, 3]"),
    (["data=mnist_openset", "data.known_classes=[12]"], "data.known_classes=[12]"),
    (["data=mnist_oneclass", "data.digit=10"], "data.digit=10"),
    (["+known=3"], "error: known=3 is not allowed: the number of known digits, only with "
                   "data=mnist_openset"),
    (["model=resnet"], "Could not find 'model/resnet'"),
    (["model=ocsvm"], "error: callbacks.test_accuracy.thresholds=[0.9, 0.99] is not allowed: "
                      "OneClassSVMModel's class scores are not probabilities"),
    (["data.download=false", "paths.data_dir=/nonexistent/mnist"], "data.download=false"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_exits_with_one_clear_message(args, message, tmp_path, mnist_dir):
    proc = _cli("train.py", *args, tmp_path=tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not list((tmp_path / "logs").rglob("checkpoints/*.ckpt"))


CONSTRUCTOR_ERRORS = [
    (["model=dae_sym", "model.network.unpool=bilinear"],
     "model.network.unpool='bilinear' is not allowed: one of ['switches', 'nearest']"),
    (["model=cool", "model.omega=5", "model.network.num_outputs=100"],
     "model.network.num_outputs=100 is not allowed: model.num_classes * model.omega = 50"),
    (["callbacks=[default,fooling]", "callbacks.fooling.lr=abc"],
     "callbacks.fooling.lr='abc' is not allowed: a positive number"),
    (["callbacks=[default,fooling]", "callbacks.fooling.betas=[0.9,2]"],
     "callbacks.fooling.betas=[0.9, 2] is not allowed: two numbers in [0, 1)"),
    # no component names its key: the node that failed, its settings and the error
    (["model=dae_sym", "++model.network.foo=1"],
     "model.network={'num_classes': 10, 'tied': True, 'unpool': 'switches', 'foo': 1} is "
     "not allowed: TypeError: ConvDAE.__init__() got an unexpected keyword argument 'foo'"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("args,line", CONSTRUCTOR_ERRORS)
def test_constructor_errors_exit_with_one_line_before_any_work(args, line, tmp_path,
                                                               mnist_dir):
    proc = _cli("train.py", *args, tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [e for e in proc.stderr.splitlines() if "error" in e.lower()]
    assert len(errors) == 1 and errors[0].startswith(f"error: {line}"), errors
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "full_key" not in proc.stderr  # not Hydra's multi-line report
    assert not list((tmp_path / "logs").rglob("*.ckpt"))


def _relative_data_dir(tmp_path, mnist_dir, corrupt: str | None = None) -> str:
    """``tmp_path/data/MNIST/raw`` linking to the real files (``corrupt`` truncated); the
    data dir's path relative to ``tmp_path``."""
    from overgen.data.mnist import RAW_FILES

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        if name == corrupt:
            (raw / name).write_bytes(b"\x00" * 10)
        else:
            os.symlink(os.path.join(mnist_dir, "MNIST", "raw", name), raw / name)
    return "data"


@pytest.mark.e2e
def test_truncated_mnist_exits_cleanly(tmp_path, mnist_dir):
    rel = _relative_data_dir(tmp_path, mnist_dir, corrupt="train-labels-idx1-ubyte")
    proc = _cli("train.py", f"paths.data_dir={rel}", tmp_path=tmp_path)
    assert proc.returncode == 2 and "train-labels-idx1-ubyte is corrupt" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("content", [None, b"not a checkpoint"])
def test_evaluate_bad_checkpoint(content, tmp_path):
    path = tmp_path / "model.ckpt"
    if content is not None:
        path.write_bytes(content)
    proc = _cli("evaluate.py", f"ckpt_path={path}", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert f"ckpt_path={str(path)!r}" in proc.stderr
    assert "Traceback" not in proc.stderr



@pytest.mark.e2e
@pytest.mark.parametrize("how", ["env", "override"])
def test_relative_data_dir_is_relative_to_the_launch_dir(how, tmp_path, mnist_dir):
    # the job changes into its run dir (hydra.job.chdir=true): a relative path still means
    # tmp_path/data, where the command was launched, and never triggers a download
    rel = _relative_data_dir(tmp_path, mnist_dir)
    env = {**os.environ, "OVERGEN_LOG_DIR": "logs", "OVERGEN_DATA_DIR": rel}
    args = ["hydra.job.chdir=true", "data.download=false", *FAST, "trainer.limit_test_batches=1"]
    if how == "override":
        env["OVERGEN_DATA_DIR"] = "/nonexistent"
        args.append(f"paths.data_dir={rel}")
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (metrics,) = (tmp_path / "logs").rglob("metrics.json")
    assert 0.0 <= json.loads(metrics.read_text())["test/acc"] <= 1.0


def test_absolute_paths_resolves_against_the_launch_dir(tmp_path, monkeypatch):
    from overgen.utils.paths import absolute_paths

    monkeypatch.chdir(tmp_path)  # launched here: HydraConfig's runtime.cwd
    cfg = compose_cfg("train", ["paths.data_dir=rel/data", "paths.log_dir=../logs"],
                      tmp_path / "run")
    monkeypatch.setenv("OVERGEN_DATA_DIR", "elsewhere")
    monkeypatch.delenv("OVERGEN_LOG_DIR", raising=False)
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")  # as hydra.job.chdir=true does
    absolute_paths(cfg)
    assert cfg.paths.data_dir == str(tmp_path / "rel" / "data")
    assert cfg.data.data_dir == cfg.paths.data_dir
    assert cfg.paths.log_dir == str(tmp_path.parent / "logs")
    assert os.environ["OVERGEN_DATA_DIR"] == cfg.paths.data_dir
    assert os.environ["OVERGEN_LOG_DIR"] == cfg.paths.log_dir
