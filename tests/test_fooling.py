"""The Fooling Generator Network (Table I): against a hand-written loop, batched against
one at a time, DDP split against one process, and end to end through the Hydra configs."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import signal
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from helpers import TINY, compose_cfg
from torch import nn

from overgen import tasks
from overgen.attacks import AttackSettings, fool, init_trial, trial_targets
from overgen.attacks.fgn import NEVER, LinearGenerators, Rank1Generators
from overgen.attacks.progress import FoolingProgress
from overgen.callbacks import FoolingAttack
from overgen.callbacks import fooling as fooling_callback
from overgen.errors import ConfigError
from overgen.models import Classifier, DAEClassifier, OneClassSVMModel, ScoringModule
from overgen.networks import ConvClassifier, ConvDAE
from overgen.utils import stop

THRESHOLDS = (0.5, 0.9)
TARGETS = trial_targets([0, 3, 7], 2)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread avoids OpenMP stalls on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0) -> Classifier:
    """784 -> 16 -> 10 tanh net, float64, with logits large enough to be fooled within
    a few dozen updates."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Tanh(), nn.Linear(16, 10))
    with torch.no_grad():
        net[3].weight.mul_(3)
    return Classifier(net).double()


class Scaled(ScoringModule):
    """A model whose final score is ``c(threshold) * y`` (c <= 1), like the dAE's paired alpha."""

    num_classes = 10

    def __init__(self, model: Classifier, c: dict) -> None:
        super().__init__()
        self.model, self.c = model, c

    def log_probs(self, x):
        return self.model.log_probs(x)

    def class_scores(self, x, threshold=None):
        return self.c[threshold] * self.log_probs(x).exp()


def tiny_dae() -> DAEClassifier:
    """An untrained conv dAE, float64, with a large classifier head (fooled within a few
    updates at lr 1e-3) and a stand-in gamma from the image's mean, so that the final score
    ``c y`` stays below ``y`` and differs between the thresholds' paired alphas."""
    torch.manual_seed(0)
    model = DAEClassifier(ConvDAE(), alpha_at={0.5: 0.5, 0.9: 0.05}).double()
    with torch.no_grad():
        model.network.head.weight.mul_(30)
    model.curvature = lambda v: (v.flatten(1).mean(1) - 0.5) * 2
    return model


MODELS = {"tiny": tiny_model, "dae": tiny_dae}


def attack(model, **kwargs):
    """``fool`` in float64; ``kwargs``: its arguments and ``AttackSettings`` fields."""
    run = {k: kwargs.pop(k) for k in ("targets", "trials", "save_to", "progress")
           if k in kwargs}
    settings = AttackSettings(**{"thresholds": THRESHOLDS, "max_steps": 25, "lr": 3e-4,
                                 "seed": 7, **kwargs})
    return fool(model, run.pop("targets", TARGETS), settings=settings, dtype=torch.float64,
                **run)


@functools.cache
def plain_loop(target: int, trial: int, steps: int, optimizer: str, lr: float,
               model_name: str = "tiny"):
    """The paper's FGN written out for one trial on ``MODELS[model_name]()``: ``nn.Linear``
    + ``torch.optim``, success judged by ``class_scores`` at each threshold after each
    update. The images after each update, the first update reaching each threshold."""
    model = MODELS[model_name]()
    z, w, b = (v.double() for v in init_trial(7, trial))
    layer = nn.Linear(784, 784).double()
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    opt = (torch.optim.Adam(layer.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(layer.parameters(), lr=lr))
    images, success = [], [NEVER] * len(THRESHOLDS)
    model.requires_grad_(False)
    for step in range(1, steps + 1):
        opt.zero_grad()
        (-model.log_probs(torch.sigmoid(layer(z)).view(1, 1, 28, 28))[0, target]).backward()
        opt.step()
        with torch.no_grad():
            x = torch.sigmoid(layer(z)).view(1, 1, 28, 28)
            images.append(x[0])
            for k, tau in enumerate(THRESHOLDS):
                if success[k] == NEVER and model.class_scores(x, threshold=tau)[0, target] >= tau:
                    success[k] = step
    return torch.stack(images), success


def test_init_depends_only_on_seed_and_trial():
    z, w, b = init_trial(3, 5)
    for got, want in zip(init_trial(3, 5), (z, w, b), strict=True):
        assert torch.equal(got, want)
    assert not torch.equal(init_trial(3, 6)[0], z) and not torch.equal(init_trial(4, 5)[0], z)
    assert z.shape == (784,) and w.shape == (784, 784) and b.shape == (784,)
    assert 0 <= z.min() and z.max() < 1
    assert w.abs().max() <= 1 / 28 and b.abs().max() <= 1 / 28


@pytest.mark.parametrize("optimizer,lr,eps,atol", [
    ("sgd", 0.1, 1e-8, 1e-10),    # rank-1 SGD is exact
    ("adam", 3e-4, 0.0, 1e-10),   # without eps, rank-1 Adam is exact Adam
    ("adam", 3e-4, 1e-8, 1e-5),   # with eps: equal to first order in eps
])
def test_rank1_generator_follows_nn_linear_trajectory(optimizer, lr, eps, atol):
    model = tiny_model()
    trials = [0, 1, 2]
    targets = torch.tensor([1, 4, 9])
    gens = [cls((init_trial(7, i) for i in trials), optimizer, lr, (0.9, 0.999), eps, "cpu",
                torch.float64) for cls in (Rank1Generators, LinearGenerators)]
    model.requires_grad_(False)
    start = gens[0].images().detach()
    for _ in range(15):
        xs = [g.images() for g in gens]
        torch.testing.assert_close(xs[0], xs[1], atol=atol, rtol=0)
        for g, x in zip(gens, xs, strict=True):
            g.step(-model.log_probs(x).gather(1, targets[:, None]).sum())
    assert (gens[0].images() - start).abs().max() > 100 * atol  # it moved


@pytest.mark.parametrize("optimizer,lr", [("adam", 3e-4), ("sgd", 0.1)])
@pytest.mark.parametrize("parametrization", ["rank1", "linear"])
def test_fool_matches_plain_loop(optimizer, lr, parametrization):
    model = tiny_model()
    result = attack(model, optimizer=optimizer, lr=lr, parametrization=parametrization)
    assert (result.success != NEVER).any() and (result.success == NEVER).any()
    for i, target in enumerate(TARGETS.tolist()):
        images, success = plain_loop(target, i, 25, optimizer, lr)
        assert result.success[i].tolist() == success
        stop = int(result.steps[i])
        assert stop == (max(success) if NEVER not in success else 25)
        atol = 1e-5 if (parametrization, optimizer) == ("rank1", "adam") else 1e-10
        torch.testing.assert_close(result.image[i], images[stop - 1], atol=atol, rtol=0)


def test_progress_gets_every_update_and_the_trials_fooled_by_then():
    """``progress(step, result)`` after each update: counts as the plain loop's successes."""
    seen = []
    result = attack(tiny_model(), progress=lambda step, r: seen.append(
        (step, (r.success != NEVER).sum(0).tolist())))
    first = [plain_loop(t, i, 25, "adam", 3e-4)[1] for i, t in enumerate(TARGETS.tolist())]
    assert [step for step, _ in seen] == list(range(int(result.steps.max()) + 1))
    for step, fooled in seen:
        assert fooled == [sum(s[k] != NEVER and s[k] <= step for s in first) for k in range(2)]
    assert seen[0][1] == [0, 0] and seen[-1][1][0] > 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("file", "enabled", "shown"), [
    (_Terminal, True, True), (_Terminal, False, False), (io.StringIO, True, False)])
def test_progress_bar_shows_fooled_counts_on_a_terminal_only(file, enabled, shown):
    out = file()
    success = torch.tensor([[3, NEVER], [5, 9], [NEVER, NEVER]])
    with FoolingProgress([0.9, 0.99], 10, enabled=enabled, file=out) as progress:
        progress(9, SimpleNamespace(success=success))
    assert ("fooled 2/3 at 0.90, 1/3 at 0.99" in out.getvalue()) is shown
    assert ("9/10" in out.getvalue()) is shown


def test_dae_attack_scores_from_its_forward_pass_as_the_plain_loop():
    """The dAE's scorer reuses the classifier's encoder pass and checks both thresholds in
    one call: the same decisions as ``class_scores`` per threshold, per update."""
    model = tiny_dae()
    result = attack(model, lr=1e-3, parametrization="linear")
    assert (result.success[:, 0] != NEVER).all() and (result.success[:, 1] != NEVER).any()
    assert (result.success[:, 1] == NEVER).any()
    for i, target in enumerate(TARGETS.tolist()):
        images, success = plain_loop(target, i, 25, "adam", 1e-3, "dae")
        assert result.success[i].tolist() == success
        torch.testing.assert_close(result.image[i], images[int(result.steps[i]) - 1],
                                   atol=1e-10, rtol=0)


def test_batched_equals_one_at_a_time_and_ddp_split():
    model = tiny_model()
    batched = attack(model)
    alone = [attack(model, targets=TARGETS[i:i + 1], trials=[i]) for i in range(len(TARGETS))]
    halves = [attack(model, targets=TARGETS[r::2], trials=torch.arange(r, len(TARGETS), 2))
              for r in (0, 1)]
    for other in (batched.merge(alone), batched.merge(halves)):
        assert torch.equal(other.trial, batched.trial) and torch.equal(other.target, TARGETS)
        assert torch.equal(other.success, batched.success)
        assert torch.equal(other.steps, batched.steps)
        torch.testing.assert_close(other.image, batched.image, atol=1e-12, rtol=0)
    assert batched.rate(0) > batched.rate(1) >= 0
    assert batched.mean_steps(0) == pytest.approx(
        batched.success[:, 0][batched.success[:, 0] > 0].double().mean().item())


def test_success_judged_on_final_score_with_paired_scale():
    """Only ``c(t) * y_t >= t`` counts; the gradient uses ``y`` (or ``y~``: same here)."""
    base = tiny_model()
    scaled = Scaled(base, {None: 1.0, 0.5: 1.0, 0.9: 0.95})
    plain, judged = attack(base), attack(scaled)
    assert torch.equal(judged.success[:, 0], plain.success[:, 0])
    later = judged.success[:, 1]
    assert ((later == NEVER) | (later > plain.success[:, 1])).all()
    assert (later[plain.success[:, 1] != NEVER] != plain.success[:, 1][plain.success[:, 1]
                                                                       != NEVER]).any()
    # -log(c y_t) has the gradient of -log y_t when c is constant
    tilde = attack(scaled, objective="y_tilde")
    assert torch.equal(tilde.success, judged.success)


def test_final_score_never_exceeds_y_for_every_model():
    """The attack checks ``class_scores`` only where ``y_t`` reaches the threshold."""
    x = torch.rand(4, 1, 28, 28)
    cool = Classifier(ConvClassifier(100), omega=10)
    dae = DAEClassifier(ConvDAE(), curvature="hutchinson", probes=2)
    for model in (tiny_model().float(), cool, dae):
        with torch.no_grad():
            assert (model.class_scores(x) <= model.log_probs(x).exp() + 1e-6).all()


def test_fooling_figure_shows_each_image_final_score(tmp_path, monkeypatch):
    """Above each image: its digit, thresholds reached, and the final score of the image
    shown, as ``class_scores`` at each threshold gives it (here scaled by 0.95 at 0.9)."""
    saved = []
    monkeypatch.setattr(fooling_callback, "atomic_savefig", lambda fig, path: saved.append(fig))
    model = Scaled(tiny_model(), {None: 1.0, 0.5: 1.0, 0.9: 0.95})
    cb = FoolingAttack(str(tmp_path), thresholds=THRESHOLDS, digits=[0, 3, 7],
                       trials_per_digit=2, max_steps=25, lr=3e-4, seed=7, save_every=None)
    cb.on_test_end(SimpleNamespace(global_rank=0, world_size=1, is_global_zero=True, loggers=[],
                                   global_step=0, progress_bar_callback=None), model)
    images = [ax for ax in saved[0].axes if ax.images]
    assert len(images) == 3
    for ax, digit in zip(images, [0, 3, 7], strict=True):
        x = torch.as_tensor(ax.images[0].get_array().data).view(1, 1, 28, 28)
        with torch.no_grad():
            scores = [float(model.class_scores(x, threshold=t)[0, digit]) for t in THRESHOLDS]
        head, line = ax.get_title().splitlines()
        assert line == " | ".join(f"{v:.3f}" for v in scores)
        assert re.fullmatch(rf"{digit}: [012]/2", head)
    assert "final score at 0.50 | 0.90" in saved[0].get_suptitle()
    # every trial's final image saved (float16) for far-OOD runs: the ones shown among them
    assert cb.results["fooling/images_file"] == "fooling_images.npy"  # in the run dir
    kept = torch.as_tensor(np.load(Path(cb.path).parent / "fooling_images.npy")
                           .astype(np.float32))
    assert kept.shape == (6, 784)
    for ax in images:
        x = torch.as_tensor(ax.images[0].get_array().data, dtype=torch.float32).flatten()
        assert (kept - x).abs().amax(-1).min() < 1e-3


def test_frozen_restores_model():
    model = tiny_model().train()
    model.network[1].weight.requires_grad_(False)
    attack(model, max_steps=3)
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True]
    assert all(p.grad is None for p in model.parameters())


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    cb = FoolingAttack(out, thresholds=THRESHOLDS, digits=[0, 3, 7], trials_per_digit=2,
                       max_steps=25, lr=3e-4, seed=7)
    trainer = SimpleNamespace(global_rank=rank, world_size=world, is_global_zero=rank == 0,
                              loggers=[], global_step=0, progress_bar_callback=None)
    cb.on_test_end(trainer, tiny_model())
    if rank == 0:
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(cb.results, f)
    dist.destroy_process_group()


@pytest.mark.slow  # two fresh interpreters import Lightning
def test_ddp_gather_equals_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "ddp")), nprocs=2)
    cb = FoolingAttack(str(tmp_path / "one"), thresholds=THRESHOLDS, digits=[0, 3, 7],
                       trials_per_digit=2, max_steps=25, lr=3e-4, seed=7)
    cb.on_test_end(SimpleNamespace(global_rank=0, world_size=1, is_global_zero=True, loggers=[],
                                   global_step=0, progress_bar_callback=None), tiny_model())
    ddp = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp.pop("figure/fooling").endswith("fooling.png")
    one = {k: v for k, v in cb.results.items() if k != "figure/fooling"}
    assert ddp == one and one["fooling/trials"] == 6 and one["fooling/rate@0.50"] > 0


def test_stop_mid_update_saves_the_attack_and_it_continues_as_uninterrupted(tmp_path,
                                                                            monkeypatch):
    """A stop signal raised inside the model's forward pass (as the dAE's curvature loop
    raises it) saves the state before that update; a second call continues from it."""
    model, path = tiny_model(), tmp_path / "fooling_state.pt"
    full = attack(model)
    forward, calls = model.log_probs_with_scorer, []

    def signalled_at_update_13(x):
        calls.append(1)
        if len(calls) == 14:
            monkeypatch.setattr(stop, "_received", signal.SIGTERM)
            stop.check()
        return forward(x)

    monkeypatch.setattr(model, "log_probs_with_scorer", signalled_at_update_13)
    with pytest.raises(stop.Stopped) as stopped:
        attack(model, save_to=str(path), save_every=5)
    assert stopped.value.signum == signal.SIGTERM
    assert stopped.value.saved == f"the fooling attack at update 13 in {path}"
    assert torch.load(path, weights_only=True)["step"] == 13
    monkeypatch.setattr(stop, "_received", None)
    resumed = attack(model, save_to=str(path), save_every=5)
    assert len(calls) == 14 + (25 - 13 + 1)  # updates 13..25 again, not 0..25
    for key in ("success", "steps", "image"):
        assert torch.equal(getattr(resumed, key), getattr(full, key)), key


def test_saved_attack_of_other_settings_is_ignored(tmp_path, caplog):
    model, path = tiny_model(), str(tmp_path / "fooling_state.pt")
    attack(model, max_steps=10, save_to=path, save_every=5)
    assert torch.load(path, weights_only=True)["step"] == 10
    other = attack(model, lr=1e-4, save_to=path, save_every=5)
    assert "saved by an attack with other settings or another model" in caplog.text
    fresh = attack(model, lr=1e-4)
    assert torch.equal(other.success, fresh.success) and torch.equal(other.image, fresh.image)
    with pytest.raises(ConfigError, match=r"^callbacks.fooling.save_every=5 is not allowed: "
                                          r"null with callbacks.fooling.generator=linear"):
        attack(model, parametrization="linear", save_every=5, save_to=path)


def test_model_without_gradients_is_refused_before_any_work(tmp_path):
    cb = FoolingAttack(str(tmp_path))
    trainer = SimpleNamespace(global_rank=0, world_size=1, is_global_zero=True, loggers=[],
                              global_step=0)
    with pytest.raises(ConfigError, match=r"^callbacks.fooling.thresholds=\[0.9, 0.99\] is "
                                          "not allowed: OneClassSVMModel's class scores are "
                                          "not probabilities: no thresholds, no log_probs"):
        cb.setup(trainer, OneClassSVMModel(), "test")  # Lightning's first hook of a test
    assert list(tmp_path.iterdir()) == [] and cb.results == {}
    cb = FoolingAttack(str(tmp_path), digits=[0, 10])
    with pytest.raises(ConfigError, match=r"^callbacks.fooling.digits=\[0, 10\]"):
        cb.check(tiny_model())


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="callbacks.fooling.optimizer"):
        FoolingAttack("out", optimizer="rmsprop")
    with pytest.raises(ValueError, match="callbacks.fooling.target"):
        FoolingAttack("out", target="logits")
    for kwargs in ({"lr": "abc"}, {"lr": 0}, {"eps": -1.0}, {"betas": [0.9]},
                   {"betas": [0.9, 1.0]}, {"betas": ["a", 0.9]}):
        key = next(iter(kwargs))
        with pytest.raises(ConfigError, match=rf"^callbacks\.fooling\.{key}="):
            FoolingAttack("out", **kwargs)
    with pytest.raises(ValueError, match=r"callbacks.fooling.save_every=500 is not allowed: "
                       r"null with callbacks.fooling.generator=linear"):
        FoolingAttack("out", generator="linear")
    FoolingAttack("out", generator="linear", save_every=None)


def test_callback_and_fool_share_one_settings_check():
    """The config keys ``target`` / ``generator`` are the settings' objective and
    parametrization; ``lr: null`` is the optimizer's default of docs/method.md §3."""
    cb = FoolingAttack("out", target="y_tilde", generator="linear", optimizer="sgd",
                       save_every=None)
    assert cb.settings == AttackSettings(objective="y_tilde", parametrization="linear",
                                         optimizer="sgd", lr=1e-3)
    assert AttackSettings().lr == 1e-5
    with pytest.raises(ConfigError, match=r"^callbacks\.fooling\.target='logits' is not"):
        AttackSettings(objective="logits")


@pytest.mark.e2e
def test_train_and_evaluate_write_fooling_metrics(tmp_path, mnist_dir):
    small = [*TINY, "trainer.max_steps=2", "trainer.limit_test_batches=1",
             "callbacks=[default,fooling]", "callbacks.fooling.max_steps=3",
             "callbacks.fooling.trials_per_digit=1", "callbacks.fooling.digits=[0,1]",
             "callbacks.fooling.lr=0.01"]
    cfg = compose_cfg("train", [*small, "data.batch_size=16"], tmp_path / "train")
    tasks.train(cfg)
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    for key in ("fooling/rate@0.90", "fooling/steps@0.90", "fooling/rate@0.99",
                "fooling/steps@0.99"):
        assert key in metrics
    assert metrics["fooling/trials"] == 2 and metrics["fooling/max_steps"] == 3
    assert metrics["fooling/target"] == "y" and metrics["fooling/optimizer"] == "adam"
    assert metrics["fooling/lr"] == 0.01
    assert metrics["run/alpha@0.90"] is None and metrics["run/alpha@0.99"] is None  # a CNN
    assert os.path.getsize(metrics["figure/fooling"]) > 0
    # the loggers get the measured values; the settings only with the config
    csv = (tmp_path / "train" / "csv" / "metrics.csv").read_text().splitlines()
    fooling = {c for c in csv[0].split(",") if c.startswith("fooling/")}
    assert fooling == {"fooling/rate@0.90", "fooling/rate@0.99"} | {
        k for k in ("fooling/steps@0.90", "fooling/steps@0.99") if metrics[k] is not None}
    hparams = yaml.safe_load((tmp_path / "train" / "csv" / "hparams.yaml").read_text())
    assert hparams["callbacks"]["fooling"]["lr"] == metrics["fooling/lr"]
    assert hparams["callbacks"]["fooling"]["max_steps"] == metrics["fooling/max_steps"]
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    cfg = compose_cfg("evaluate", [*TINY, f"ckpt_path={ckpt}", "trainer.limit_test_batches=1"],
                      tmp_path / "eval")
    tasks.evaluate(cfg)
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert again["fooling/rate@0.90"] == metrics["fooling/rate@0.90"]
    assert (tmp_path / "eval" / "fooling.png").exists()
