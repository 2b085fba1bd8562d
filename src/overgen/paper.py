"""The paper's published numbers (Spigler; docs/method.md §3), not ours, and its order of
models: read by the report's tables and by the figures."""

from __future__ import annotations

# models in the order the report and the figures list them, the paper's first
MODEL_ORDER = ("cnn", "cool", "dae_sym", "dae_asym", "dae_mlp", "dae_oneclass", "ocsvm")

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


def paper_auc(name: str) -> str:
    """The paper's Fig. 5 AUC of the model a report label ``name`` starts with (every dAE
    reads the paper's dAE), ``–`` when the paper has none."""
    model = name.split(" ")[0]
    auc = PAPER_AUC.get("dae" if model.startswith("dae") else model)
    return "–" if auc is None else f"{auc:.3f}"
