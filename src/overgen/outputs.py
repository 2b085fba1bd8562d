"""One schema for what runs write and what reads it back (``overgen.runs``, ``overgen.report``):
the files in a run dir and the ``metrics.json`` keys both sides use. Keys and names are a
contract (results/ and reports read them): add new ones, never rename."""

from __future__ import annotations

# -- files in a run dir ---------------------------------------------------------------------
METRICS_FILE = "metrics.json"  # flat metrics of a finished run (overgen.tasks)
ERROR_FILE = "error.json"  # why a run failed (overgen.runs)
SKIPPED_FILE = "skipped.json"  # a job that had finished already (overgen.tasks)
ROC_FILE = "roc.json"  # the 1-class ROC curve (callbacks.OneClass)
GAMMA_FILE = "gamma.json"  # exact gamma of some test images (overgen.report.gamma_check)
RINGS_CHECK_FILE = "rings_check.json"  # c(x) on and off the rings (overgen.report.rings_check)
# a dAE's view of its fooling images and its test errors (overgen.report.fooling_check)
FOOLING_CHECK_FILE = "fooling_check.json"
# the fooling attack's final images (callbacks.FoolingAttack), float16 [N, 784] in [0, 1]:
# a far-OOD set (callbacks.FarOOD) of a later evaluation
FOOLING_IMAGES_FILE = "fooling_images.npy"
# evaluate.py's test_progress_file(rank) of a job: <log dir>/<task>/EVALUATE_PROGRESS_DIR/
# <runs.job_digest of its overrides and checkpoint>/, found again by the same command
EVALUATE_PROGRESS_DIR = ".progress"


def _rank_file(stem: str, rank: int) -> str:
    """``<stem>.pt`` on DDP rank 0, ``<stem>.rank<r>.pt`` on rank ``r``."""
    return f"{stem}{f'.rank{rank}' if rank else ''}.pt"


def fooling_state_file(rank: int) -> str:
    """The fooling attack's saved state of DDP rank ``rank``: ``fooling_state.pt`` on rank
    0, ``fooling_state.rank<r>.pt`` on the others."""
    return _rank_file("fooling_state", rank)


def test_progress_file(rank: int) -> str:
    """The scores of the finished test batches of DDP rank ``rank``
    (``callbacks.TestProgress``): ``test_progress.pt``, ``test_progress.rank<r>.pt``."""
    return _rank_file("test_progress", rank)


# -- metrics.json keys ----------------------------------------------------------------------
def threshold_key(prefix: str, threshold: float) -> str:
    """``test/acc@0.90``-style keys of a value at a threshold (two decimals)."""
    return f"{prefix}@{threshold:.2f}"


def key_thresholds(metrics: dict, prefix: str) -> list[float]:
    """The thresholds of the ``threshold_key(prefix, t)`` keys in ``metrics``, ascending."""
    return sorted(float(k.removeprefix(f"{prefix}@")) for k in metrics
                  if k.startswith(f"{prefix}@"))


TEST_PREFIX = "test/"  # every metric the model logs while testing
TEST_ACC = "test/acc"  # plain accuracy; threshold_key(TEST_ACC, t) at a threshold
TEST_MSE = "test/mse"
FOOLING_PREFIX = "fooling/"
FOOLING_RATE = "fooling/rate"  # threshold_key(FOOLING_RATE, t)
FOOLING_STEPS = "fooling/steps"  # threshold_key(FOOLING_STEPS, t)
FOOLING_TRIALS = "fooling/trials"
FOOLING_MAX_STEPS = "fooling/max_steps"
FOOLING_FIGURE = "figure/fooling"
FOOLING_IMAGES = "fooling/images_file"  # FOOLING_IMAGES_FILE, in the run dir
RINGS_FIGURE = "figure/rings2d"
OPENSET_F1 = "openset/f1"
OPENSET_PRECISION = "openset/precision"  # of the accepted test samples, pooled
OPENSET_RECALL = "openset/recall"  # of the known test samples, pooled
OPENSET_KNOWN = "openset/known"
OPENSET_OPENNESS = "openset/openness"
OPENSET_THRESHOLD = "openset/threshold"
OPENSET_F1_PERCLASS = "openset/f1_perclass"  # F with a misassigned known sample also an FN
OPENSET_OSCR = "openset/oscr"  # area under the open-set classification rate curve
OOD_PREFIX = "ood/"
OOD_NAMES = ("auroc", "aupr_in", "aupr_out", "fpr@95tpr")  # metrics.ood_metrics' keys
OOD_KEYS = tuple(OOD_PREFIX + name for name in OOD_NAMES)
ONECLASS_PREFIX = "oneclass/"
ONECLASS_AUROC = "oneclass/auroc"
ONECLASS_DIGIT = "oneclass/digit"
ONECLASS_ROC_FILE = "oneclass/roc_file"
# post-hoc scores of a model with logits beside its final score (models.posthoc), each
# ranked as the final score is: posthoc_key(OOD_PREFIX, s, n) for n in OOD_NAMES,
# posthoc_key(ONECLASS_PREFIX, s, "auroc")
POSTHOC_SCORES = ("msp", "max_logit", "energy", "mahalanobis", "reconstruction")


def posthoc_key(prefix: str, score: str, name: str) -> str:
    """``ood/msp/auroc``-style keys: the metric ``name`` of the post-hoc ``score``."""
    return f"{prefix}{score}/{name}"


# far-OOD sets (callbacks.FarOOD): the MNIST test set vs each set, far_ood_key(s, score, n)
# for score in (FINAL_SCORE, *POSTHOC_SCORES) and n in FAR_OOD_NAMES
FAR_OOD_SETS = ("gaussian", "uniform", "constant", "inverted", "fooling")
FINAL_SCORE = "final"  # the name of the max final class score (ood/auroc ranks by it)
FAR_OOD_NAMES = ("auroc", "fpr@95tpr")  # of metrics.ood_metrics' keys


def far_ood_key(far_set: str, score: str, name: str) -> str:
    """``ood/gaussian/msp/auroc``-style keys: the MNIST test set vs the far-OOD set
    ``far_set`` ranked by ``score``."""
    return f"{OOD_PREFIX}{far_set}/{score}/{name}"


RUN_MODEL = "run/model"
RUN_DATA = "run/data"
RUN_EPOCHS = "run/epochs"
RUN_STEPS = "run/steps"
RUN_ALPHA = "run/alpha"  # model.alpha; threshold_key(RUN_ALPHA, t): the alpha paired with t
RUN_RESUMED_FROM = "run/resumed_from"  # the checkpoint a resumed run started from (or None)
# trainer settings that shrink a run: metrics.json records each as run/<key>
SIZE_LIMITS = ("max_epochs", "max_steps", "limit_train_batches", "limit_test_batches",
               "fast_dev_run")
