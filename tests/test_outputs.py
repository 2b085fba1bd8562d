"""The run-output schema: file names and metrics.json keys are a contract (never renamed)."""

from __future__ import annotations

from overgen import outputs


def test_file_names_are_the_contract():
    assert (outputs.METRICS_FILE, outputs.ERROR_FILE, outputs.SKIPPED_FILE, outputs.ROC_FILE,
            outputs.GAMMA_FILE) == ("metrics.json", "error.json", "skipped.json", "roc.json",
                                    "gamma.json")
    assert outputs.fooling_state_file(0) == "fooling_state.pt"
    assert outputs.fooling_state_file(3) == "fooling_state.rank3.pt"
    assert outputs.test_progress_file(0) == "test_progress.pt"
    assert outputs.test_progress_file(1) == "test_progress.rank1.pt"


def test_metric_keys_are_the_contract():
    assert outputs.threshold_key(outputs.TEST_ACC, 0.9) == "test/acc@0.90"
    assert outputs.threshold_key(outputs.FOOLING_STEPS, 0.99) == "fooling/steps@0.99"
    assert outputs.threshold_key(outputs.RUN_ALPHA, 0.5) == "run/alpha@0.50"
    assert outputs.OOD_KEYS == ("ood/auroc", "ood/aupr_in", "ood/aupr_out", "ood/fpr@95tpr")
    assert [outputs.TEST_ACC, outputs.TEST_MSE, outputs.FOOLING_RATE, outputs.FOOLING_TRIALS,
            outputs.FOOLING_MAX_STEPS, outputs.FOOLING_FIGURE, outputs.RINGS_FIGURE,
            outputs.OPENSET_F1, outputs.OPENSET_KNOWN, outputs.OPENSET_OPENNESS,
            outputs.OPENSET_THRESHOLD, outputs.ONECLASS_AUROC, outputs.ONECLASS_DIGIT,
            outputs.ONECLASS_ROC_FILE, outputs.RUN_MODEL, outputs.RUN_DATA,
            outputs.RUN_EPOCHS, outputs.RUN_STEPS] == [
        "test/acc", "test/mse", "fooling/rate", "fooling/trials", "fooling/max_steps",
        "figure/fooling", "figure/rings2d", "openset/f1", "openset/known", "openset/openness",
        "openset/threshold", "oneclass/auroc", "oneclass/digit", "oneclass/roc_file",
        "run/model", "run/data", "run/epochs", "run/steps"]
    prefixes = (outputs.TEST_PREFIX, outputs.FOOLING_PREFIX, outputs.OOD_PREFIX,
                outputs.ONECLASS_PREFIX)
    assert prefixes == ("test/", "fooling/", "ood/", "oneclass/")


def test_posthoc_and_openset_keys_are_the_contract():
    assert outputs.POSTHOC_SCORES == ("msp", "max_logit", "energy", "mahalanobis",
                                      "reconstruction")
    assert outputs.posthoc_key(outputs.OOD_PREFIX, "msp", "fpr@95tpr") == "ood/msp/fpr@95tpr"
    assert (outputs.posthoc_key(outputs.ONECLASS_PREFIX, "energy", "auroc")
            == "oneclass/energy/auroc")
    assert (outputs.OPENSET_OSCR, outputs.OPENSET_F1_PERCLASS) == ("openset/oscr",
                                                                   "openset/f1_perclass")
