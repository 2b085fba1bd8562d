"""The paper's published numbers (Spigler; docs/method.md §3), not ours, and its order of
models: read by the report's tables and by the figures."""

from __future__ import annotations

# models in the order the report and the figures list them, the paper's first (models
# added later go last, so each earlier model keeps its colour in figures.MODEL_COLOURS)
MODEL_ORDER = ("cnn", "cool", "dae_sym", "dae_asym", "dae_mlp", "dae_oneclass", "ocsvm",
               "deep_svdd", "dae_separate")

# Table I as printed: acc, acc@90%, acc@99% in %, fooled@90% (steps), fooled@99% (steps)
PAPER_TABLE_I = {
    "cnn": ("CNN", "99.35", "99.23", "~99", "100% (63.5)", "99% (187.1)"),
    "cool": ("COOL", "99.33", "98.1", "93.54", "34.5% (238.8)", "4.5% (313.4)"),
    "dae_sym": ("dAE sym", "98.98", "98.11", "96.8", "0%", "0%"),
    "dae_asym": ("dAE asym", "99.14", "98.41", "-", "0%", "-"),
}
PAPER_EPOCHS = 100  # per model, for Table I
# Fig. 5's AUCs (1-class, averaged over the ten digits)
PAPER_AUC = {"dae": 0.964, "ocsvm": 0.952, "cool": 0.753}


# 1-class models beyond the paper, with the mean MNIST AUC of their own paper, not ours:
# Deep SVDD, Ruff et al. (ICML 2018), Table 1, one-class Deep SVDD over the ten digits.
OTHER_PAPER_AUC = {"deep_svdd": (0.948, "Ruff et al. 2018")}


def paper_auc(name: str) -> str:
    """The published AUC of the setting's model (its first word): the paper's (every joint
    dAE reads the paper's dAE; ``dae_separate`` has none), else that of the model's own
    paper; ``–`` without one."""
    model = name.split(" ")[0]
    joint_dae = model.startswith("dae") and model != "dae_separate"  # the paper's dAE is joint
    auc = PAPER_AUC.get("dae" if joint_dae else model)
    if auc is None and model in OTHER_PAPER_AUC:
        auc = OTHER_PAPER_AUC[model][0]
    return "–" if auc is None else f"{auc:.3f}"


def paper_aucs(sep: str = "; ") -> str:
    """Every published 1-class AUC: the paper's, then, each after ``sep``, the other
    models' with their source."""
    ours = ", ".join(f"{k} {v:.3f}" for k, v in PAPER_AUC.items())
    return sep.join([ours, *(f"{k} {v:.3f} ({source})"
                             for k, (v, source) in OTHER_PAPER_AUC.items())])
