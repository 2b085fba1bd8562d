"""The claims table: each verdict from its rule on hand-made summary values, pending when
the runs are missing, and the rings check that feeds Fig. 2's rows."""

from __future__ import annotations

import json

import pytest
import torch

from overgen.report import claims
from overgen.report.rings_check import CENTRES, FAR, check


def verdicts(summary: dict) -> list[str]:
    return [row[3] for row in claims.table(summary)[1]]


def row(summary: dict, claim: str) -> list[str]:
    """The claims table's row whose claim starts with ``claim``."""
    (found,) = [r for r in claims.table(summary)[1] if r[0].startswith(claim)]
    return found


def verdict(summary: dict, claim: str) -> str:
    return row(summary, claim)[3]


def _fooling(dae: float, cnn: float) -> dict:
    return {f"table1/{m}/fooled@{t}": v for m, v in (("dae_sym", dae), ("cnn", cnn))
            for t in ("0.90", "0.99")}


def _fig4(dae: list[float], cnn: list[float], cool: list[float]) -> dict:
    return {f"fig4/{m}/k{k}/f_mean": f for m, fs in (("dae_sym", dae), ("cnn", cnn),
                                                     ("cool", cool))
            for k, f in enumerate(fs, 1)}


def _fig5(dae: float, ocsvm: float, cool: float) -> dict:
    return {k: v for m, a in (("dae_oneclass", dae), ("ocsvm", ocsvm), ("cool", cool))
            for k, v in ((f"fig5/{m}/auroc_mean", a), (f"fig5/{m}/digits", 10))}


def test_nothing_run_is_pending_everywhere():
    assert verdicts({}) == ["pending"] * len(claims.CLAIMS)


@pytest.mark.parametrize("dae,cnn,expected", [
    (0.0, 1.0, "reproduced"), (0.005, 0.9, "reproduced"),  # 1 of 200 trials; 90% exactly
    (0.02, 1.0, "partly"), (0.0, 0.5, "partly"), (0.5, 0.5, "not reproduced")])
def test_fooling_rule(dae, cnn, expected):
    assert verdict(_fooling(dae, cnn), "Table I: the dAE is never fooled") == expected


@pytest.mark.parametrize("cool,expected", [
    ((0.345, 0.045), "reproduced"), ((0.5, 0.4), "reproduced"),  # half of 1.0 / 0.8 exactly
    ((1.0, 0.3), "partly"), ((1.0, 0.935), "not reproduced")])
def test_cool_fooling_rule(cool, expected):
    s = {"table1/cnn/fooled@0.90": 1.0, "table1/cnn/fooled@0.99": 0.8,
         "table1/cool/fooled@0.90": cool[0], "table1/cool/fooled@0.99": cool[1],
         **{f"table1/{m}/steps@{t}": v for m, t, v in (("cool", "0.90", 526.0),
            ("cool", "0.99", 1926.8), ("cnn", "0.90", 130.7), ("cnn", "0.99", 349.3))}}
    assert verdict(s, "Table I: COOL") == expected
    why = row(s, "Table I: COOL")[5]
    assert (why == "–") == (expected == "reproduced")
    if why != "–":
        assert why.startswith("mean updates to a fooling image: COOL 526 / 1927, CNN 131 / 349")


@pytest.mark.parametrize("dae,cnn,expected", [
    (0.0, 1.0, "reproduced"), (0.3, 1.0, "partly"), (0.3, 0.5, "not reproduced")])
def test_fast_fooling_rule(dae, cnn, expected):
    s = {"table1/dae_sym@lr0.001/fooled@0.90": dae, "table1/cnn@lr0.001/fooled@0.90": cnn}
    assert verdict(s, "Sec. IV-B") == expected
    assert verdict({"table1/dae_sym/fooled@0.90": 0.0}, "Sec. IV-B") == "pending"


@pytest.mark.parametrize("acc,at90,at99,expected", [
    (0.99, 0.98, 0.965, "reproduced"), (0.99, 0.97, 0.70, "partly"),
    (0.99, 0.93, 0.72, "not reproduced")])
def test_thresholding_rule(acc, at90, at99, expected):
    s = {"table1/dae_sym/acc": acc, "table1/dae_sym/acc@0.90": at90,
         "table1/dae_sym/acc@0.99": at99}
    assert verdict(s, "Table I: thresholding") == expected


def test_openset_rule_counts_the_k_where_the_dae_is_above_both():
    # the dAE on top at K=1..6 of 1..10 (6 of 10: more than half)
    s = _fig4([0.9] * 6 + [0.5] * 4, [0.7] * 10, [0.6] * 10)
    fig4 = row(s, "Fig. 4")
    assert fig4[3] == "partly" and "K = 1, 2, 3, 4, 5, 6 of K = 1, 2, 3" in fig4[2]
    assert verdict(_fig4([0.9] * 10, [0.5] * 10, [0.5] * 10), "Fig. 4") == "reproduced"
    five_of_ten = _fig4([0.9] * 5 + [0.1] * 5, [0.5] * 10, [0.5] * 10)
    assert verdict(five_of_ten, "Fig. 4") == "not reproduced"
    # a K without all three models is not judged
    no_cool = {"fig4/dae_sym/k1/f_mean": 0.9, "fig4/cnn/k1/f_mean": 0.1}
    assert verdict(no_cool, "Fig. 4") == "pending"


def test_openset_why_names_recall_and_precision_where_the_dae_is_not_on_top():
    # the dAE on top at K=1..8; at K=9 the CNN, at K=10 COOL
    s = _fig4([0.9] * 8 + [0.5, 0.5], [0.7] * 8 + [0.8, 0.6], [0.6] * 9 + [0.7])
    for m, k, recall, precision in (("cnn", 9, 0.95, 0.90), ("dae_sym", 9, 0.85, 0.99),
                                    ("cool", 10, 0.80, 0.97), ("dae_sym", 10, 0.82, 0.95)):
        s[f"fig4/{m}/k{k}/recall_mean"], s[f"fig4/{m}/k{k}/precision_mean"] = recall, precision
    fig4 = row(s, "Fig. 4")
    assert fig4[3] == "partly"
    assert fig4[5] == (
        "recall / precision of the known test images at the threshold, where the dAE is not on "
        "top: K=9: cnn 0.950 / 0.900, dAE 0.850 / 0.990; K=10: cool 0.800 / 0.970, dAE 0.820 / "
        "0.950; the dAE's recall is the lower at 1 of these 2 K")


def test_openset_waits_for_every_k_on_the_same_subsets():
    s = _fig4([0.9] * 9, [0.5] * 9, [0.5] * 9)  # K = 10 not in yet
    fig4 = row(s, "Fig. 4")
    assert fig4[3] == "pending" and fig4[2].endswith("; so far")
    assert "K = 1, 2, 3, 4, 5, 6, 7, 8, 9 of" in fig4[2]
    s = _fig4([0.9] * 10, [0.5] * 10, [0.5] * 10)
    s.update({f"fig4/{m}/k2/n": n for m, n in (("dae_sym", 2), ("cnn", 3), ("cool", 3))})
    assert verdict(s, "Fig. 4") == "pending"  # K=2: the dAE on 2 subsets, the others on 3
    s["fig4/dae_sym/k2/n"] = 3
    assert verdict(s, "Fig. 4") == "reproduced"


@pytest.mark.parametrize("aucs,expected", [
    ((0.964, 0.952, 0.753), "reproduced"), ((0.82, 0.96, 0.92), "not reproduced"),
    ((0.93, 0.96, 0.92), "partly"), ((0.97, 0.90, 0.95), "partly")])
def test_oneclass_rule(aucs, expected):
    assert verdict(_fig5(*aucs), "Fig. 5") == expected


def test_measured_why_only_for_claims_not_reproduced():
    s = {**_fig5(0.73, 0.95, 0.77), "ablation/gamma/positive": 0, "ablation/gamma/checked": 500,
         "fig5/dae_oneclass/mahalanobis/auroc_mean": 0.966,
         **{f"ablation/oneclass/dae_oneclass,loss=sum,l2=10,unpool={u},input=noisy,epochs=10/"
            f"auroc_mean": v for u, v in (("nearest", 0.933), ("switches", 0.765))},
         # the ten digits under nearest unpooling: above Fig. 5's dAE on digits 0-6 only
         "ablation/oneclass/dae_oneclass,loss=sum,l2=10,unpool=nearest,input=noisy,epochs=10/"
         "auroc_mean10": 0.856,
         **{f"ablation/oneclass/dae_oneclass,loss=sum,l2=10,unpool=nearest,input=noisy,"
            f"epochs=10/auroc/{d}": 0.8 for d in range(10)},
         **{f"fig5/dae_oneclass/auroc/{d}": 0.7 if d < 7 else 0.9 for d in range(10)},
         # thresholding: acc@0.99 27 points below acc; alpha 3 at 0.99
         "table1/dae_sym/acc": 0.99, "table1/dae_sym/acc@0.90": 0.93,
         "table1/dae_sym/acc@0.99": 0.72, "table1/dae_sym/mse": 0.0019,
         "table1/dae_sym/alpha@0.99": 3}
    assert row(s, "Fig. 5")[5] == (
        "gamma > 0 on 0 of 500 MNIST test images checked, so Gamma = 1 and the dAE's score is "
        "exp(-alpha e/D) y; on the ablation panel (digits 0, 1, 8, 10 epochs) nearest unpooling "
        "ranks at 0.933, switches (the chosen setting) at 0.765; on all ten digits (10 epochs) "
        "nearest unpooling ranks at 0.856, above Fig. 5's switches on 7 of 10 digits; a "
        "Mahalanobis distance on the same dAEs' code ranks at 0.966")
    # exp(-3 m) >= 0.99 <=> m <= -ln(0.99) / 3 = 0.00335 (hand-worked)
    thr = row(s, "Table I: thresholding")
    assert thr[3] == "not reproduced" and thr[5].endswith("the test MSE is 0.0019")
    assert "at most 0.0034 (exp(-3 MSE) >= 0.99)" in thr[5]
    # the epoch trend: the ablation's 3- and 30-epoch runs of the chosen setting, Table I's 10
    chosen = "ablation/openset/dae_sym,loss=sum,l2=0,unpool=switches,input=noisy,epochs="
    s.update({f"{chosen}30/acc@0.99": 0.95, f"{chosen}3/acc@0.99": 0.723,
              f"{chosen}3/acc": 0.988, "table1/dae_sym/epochs": "10",
              "ablation/openset/dae_sym,loss=sum,l2=0,unpool=nearest,input=noisy,epochs=3/"
              "acc@0.99": 0.026})
    assert row(s, "Table I: thresholding")[5].endswith(
        "the test MSE is 0.0019; acc@0.99 by epochs: 72.3% at 3, 72.0% at 10, 95.0% at 30")
    # a reproduced claim and a pending one explain nothing
    assert row(_fig5(0.97, 0.95, 0.75), "Fig. 5")[5] == "–"
    assert row({}, "Fig. 5")[5] == "–"


def test_oneclass_waits_for_all_ten_digits():
    s = _fig5(0.99, 0.5, 0.4)
    s["fig5/ocsvm/digits"] = 3
    assert verdict(s, "Fig. 5") == "pending"


class _Rings:
    """A stand-in rings model: c = 1 within 0.2 of the unit circle around (1, 1), else 0;
    gamma = 2 - distance to (1, 1)."""

    def confidence(self, x):
        return ((x - 1).norm(dim=1).sub(1).abs() < 0.2).float()

    def curvature(self, x):
        return 2 - (x - 1).norm(dim=1)


def test_rings_check_values_and_the_two_rings_claims():
    c = check(_Rings(), samples=300)
    centres, far = torch.tensor(CENTRES), torch.tensor(FAR)
    assert c["c_centres"] == _Rings().confidence(centres).tolist()  # all 0: at a centre
    assert c["gamma_centres"] == pytest.approx(_Rings().curvature(centres).tolist())
    assert c["c_far"] == _Rings().confidence(far).tolist()
    # the stand-in's band holds at most the samples of one ring of three: median c is 0
    assert c["c_rings_median"] == 0.0 and c["ring_samples"] == 300
    s = {"fig2/c_rings_median": 0.95, "fig2/c_centres_max": max(c["c_centres"]),
         "fig2/c_far_max": 0.3, "fig2/gamma_centres_min": min(c["gamma_centres"])}
    # c 0.3 at a far point: partly; gamma at (-1, 1) and (1, -1) is 2 - 2 = 0: not > 0
    assert [verdict(s, "Fig. 2"), verdict(s, "Eq. 4")] == ["partly", "not reproduced"]
    s.update({"fig2/c_far_max": 0.0, "fig2/gamma_centres_min": 0.5})
    assert [verdict(s, "Fig. 2"), verdict(s, "Eq. 4")] == ["reproduced", "reproduced"]


def test_claims_cli_writes_the_table_and_refuses_a_missing_summary(tmp_path, capsys):
    (tmp_path / "summary.json").write_text(json.dumps(_fooling(0.0, 1.0)))
    out = tmp_path / "claims.md"
    assert claims.main([str(tmp_path / "summary.json"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| reproduced |" in text and text.count("| pending |") == len(claims.CLAIMS) - 1
    assert claims.main([str(tmp_path / "none.json"), "--out", str(tmp_path / "x.md")]) == 2
    assert capsys.readouterr().err.startswith("error: summary=")
    assert not (tmp_path / "x.md").exists()
