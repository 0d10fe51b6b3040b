"""Verdict rules of the bench chapters (sdl_paper.studies.verdicts.bench): Table 1, the transcoder and crosscoder,
anchoring and the ablations, each outcome on made-up numbers."""
import pandas as pd

from sdl_paper.studies import paper
from sdl_paper.studies.lrb import ROWS
from sdl_paper.studies.verdicts import bench


def _judged(final=None, peak=None, status=None):
    """A made-up :func:`curves.judged` table by (row, lr): every row converged at lr 1e-3 only, its final at the
    paper's value (ReLU and JumpReLU at 0), its peak 0.05 above; lr 1e-4 not converged."""
    final, peak, status = final or {}, peak or {}, status or {}
    rows = []
    for r in ROWS:
        f = final.get(r, paper.TABLE1[r][0])
        rows += [dict(row=r, value=1e-3, peak=peak.get(r, f + 0.05), peak_step=960, final=f,
                      status=status.get(r, "converged")),
                 dict(row=r, value=1e-4, peak=0.0, peak_step=5999, final=0.0, status="not converged")]
    return pd.DataFrame(rows)


def test_table1_reproduced_when_every_converged_final_matches_the_paper():
    v = bench.table1(_judged())
    assert v.verdict == "reproduced"
    assert "TopK SAE: final 85%, peak 90% (lr 0.001, step 960) vs the paper's 84.9%: final" in v.evidence
    assert v.numbers["TopK SAE"]["converged"] == [1e-3]


def test_table1_not_reproduced_when_a_row_ends_far_from_the_paper_and_says_if_its_peak_matches():
    v = bench.table1(_judged(final={"TopK SAE": 0.0}, peak={"TopK SAE": 0.8}))
    assert v.verdict == "not reproduced" and v.numbers["TopK SAE"]["reads"] == "peak only"
    v = bench.table1(_judged(final={"TopK SAE": 0.0}, peak={"TopK SAE": 0.5}))
    assert v.verdict == "not reproduced" and v.numbers["TopK SAE"]["reads"] == "neither"
    assert bench.table1(_judged(final={"ReLU SAE": 0.06})).verdict == "not reproduced"


def test_table1_inconclusive_when_a_row_converged_at_no_learning_rate():
    for r in ("Matryoshka SAE", "JumpReLU SAE"):
        v = bench.table1(_judged(status={r: "still changing"}))
        assert v.verdict == "inconclusive" and f"{r}: final: no lr converged" in v.evidence, r
    # the coders' rows do not enter the TopK-family verdict
    assert bench.table1(_judged(status={"TopK crosscoder": "not converged"})).verdict == "reproduced"
    # a converged row that misses decides, whatever the rows that have not converged would do
    v = bench.table1(_judged(final={"TopK SAE": 0.0}, status={"ReLU SAE": "still changing"}))
    assert v.verdict == "not reproduced" and v.numbers["ReLU SAE"]["match"] is None


def test_coders_follow_the_same_rule():
    assert bench.coders(_judged()).verdict == "reproduced"
    assert bench.coders(_judged(final={"TopK transcoder": 0.4})).verdict == "not reproduced"
    assert bench.coders(_judged(status={"TopK crosscoder": "not converged"})).verdict == "inconclusive"


def _arm_curves(gain=(0.2, 0.2, 0.2), control=(0.0, 0.0, 0.0), base=0.5, relu_anchored=0.0, late=None,
                zero_row=None, ip_gain=(0.04, 0.05, 0.06)):
    """Curves (two steps, three seeds) of every row in the three arms: the claimed rows end at ``base`` without
    anchoring, + ``gain`` (per seed) anchored, + ``control`` under the random-span control; ReLU and JumpReLU at
    0 (ReLU anchored at ``relu_anchored``); ``zero_row`` at 0 in every arm with M_IP gains ``ip_gain``; the row
    ``late`` still moving in its last third."""
    rows = []
    for r in ROWS:
        claimed = paper.TABLE1[r][2] > paper.TABLE1[r][0]
        for seed in range(3):
            for arm in ("none", "anchored", "random span"):
                end = (0.0 if not claimed or r == zero_row else
                       base + {"none": 0, "anchored": gain[seed], "random span": control[seed]}[arm])
                if r == "ReLU SAE" and arm == "anchored":
                    end = relu_anchored
                ip = 0.5 + (ip_gain[seed] if arm == "anchored" and r == zero_row else 0.0)
                start = end + (0.3 if r == late else 0.0)
                rows += [dict(row=r, arm=arm, seed=seed, step=s, M_GT_enc=e, M_IP_enc=ip, M_GT_dec=1.0,
                              M_IP_dec=1.0) for s, e in ((0, 0.0), (50, start), (99, end))]
    return pd.DataFrame(rows)


def test_anchoring_needs_a_gain_over_both_arms_beyond_the_seeds_spread():
    n, m = 42, 8                                            # one evaluated feature: 1 / 34
    v = bench.anchoring(_arm_curves(), n, m)
    assert v.verdict == "reproduced" and "TopK SAE: M_GT_enc gain +0.200, over control +0.200" in v.evidence
    assert bench.anchoring(_arm_curves(gain=(0.5 / 34,) * 3), n, m).verdict == "not reproduced"   # < 1 feature
    assert bench.anchoring(_arm_curves(gain=(0.3, -0.2, 0.2)), n, m).verdict == "not reproduced"  # spread
    assert bench.anchoring(_arm_curves(control=(0.2, 0.2, 0.2)), n, m).verdict == "not reproduced"  # control
    assert bench.anchoring(_arm_curves(relu_anchored=0.1), n, m).verdict == "not reproduced"


def test_anchoring_judges_a_row_at_zero_on_m_ip_and_is_inconclusive_before_convergence():
    v = bench.anchoring(_arm_curves(zero_row="TopK transcoder"), 42, 8)
    assert v.verdict == "reproduced" and v.numbers["TopK transcoder"]["metric"] == "M_IP_enc"
    f = _arm_curves(zero_row="TopK transcoder", ip_gain=(0.05, -0.04, 0.0))
    assert bench.anchoring(f, 42, 8).verdict == "not reproduced"
    # an M_IP gain below one evaluated feature's share (1 / 34) is no gain
    assert bench.anchoring(_arm_curves(zero_row="TopK transcoder", ip_gain=(0.01, 0.012, 0.014)), 42,
                           8).verdict == "not reproduced"
    # at zero M_GT, convergence is read on M_IP: an M_IP still moving makes the row inconclusive
    f = _arm_curves(zero_row="TopK SAE")
    late = (f["row"] == "TopK SAE") & (f["step"] == 50)
    f.loc[late, "M_IP_enc"] += 0.3
    v = bench.anchoring(f[f["row"] == "TopK SAE"], 42, 8)
    assert v.verdict == "inconclusive" and v.numbers["TopK SAE"]["metric"] == "M_IP_enc"
    v = bench.anchoring(_arm_curves(late="BatchTopK SAE"), 42, 8)
    assert v.verdict == "inconclusive" and "BatchTopK SAE: M_GT_enc" in v.evidence
    assert "(not converged)" in v.evidence
    # a converged row without a gain decides, whatever the row still moving would do
    assert bench.anchoring(_arm_curves(late="BatchTopK SAE", relu_anchored=0.2), 42, 8).verdict == "not reproduced"


def _ablation_frame(k=(0.95, 0.9, 0.8), ratios=(1.04, 1.3, 1.82), relu_plain=0.0, relu_anchored=(1.0, 0.5, 0.1),
                    dens=(0.5, 0.99), Ms=(0.9, 0.95), late=None):
    """Curves (three steps, two seeds, arms none and anchored) of the four ablations; ``late`` = (ablation,
    setting) moves by 0.3 in its last third."""
    rows = []

    def add(name, row, setting, plain, anchored):
        for seed in (0, 1):
            for arm, v in (("none", plain), ("anchored", anchored)):
                rows.extend(dict(ablation=name, row=row, setting=setting, seed=seed, arm=arm, step=s,
                                 M_GT_enc=v + (0.3 if (name, setting) == late else 0.0) * (s == 50),
                                 M_GT_dec=1.0) for s in (0, 50, 99))
    for kk, v in zip((6, 12, 24), k):
        add("k", "TopK SAE", kk, v, v)
    plain = relu_plain if isinstance(relu_plain, tuple) else (relu_plain,) * len(ratios)
    for r, p, v in zip(ratios, plain, relu_anchored):
        add("n / n_p", "ReLU SAE", r, p, v)
    for p, v in zip((0.01, 0.1), dens):
        add("1 - S", "TopK SAE", p, v, v)
    for mm, v in zip((0.2, 0.5), Ms):
        add("M", "TopK SAE", mm, v, v)
    return pd.DataFrame(rows)


def test_ablation_verdicts_follow_their_rules():
    ratios = [1.04, 1.3, 1.82]
    v = bench.ablations(_ablation_frame(), ratios, {})
    assert {key: x.verdict for key, x in v.items()} == {
        "ablation_k": "reproduced", "ablation_superposition": "reproduced",
        "ablation_interference_sparsity": "reproduced"}
    assert "at k = 6, 12, 24: 95%, 90%, 80%" in v["ablation_k"].evidence
    assert "paper's M = 0.05 not run" in v["ablation_interference_sparsity"].evidence
    cases = [(dict(k=(0.95, 0.96, 0.8)), "ablation_k"),             # rises once
             (dict(k=(0.85, 0.8, 0.7)), "ablation_k"),              # falls, but from below 90%
             (dict(relu_plain=0.1), "ablation_superposition"),      # plain ReLU recovers something
             (dict(relu_anchored=(1.0, 0.95, 0.92)), "ablation_superposition"),   # anchored never below 90%
             (dict(dens=(0.99, 0.97)), "ablation_interference_sparsity"),       # falls with density
             (dict(Ms=(0.6, 0.95)), "ablation_interference_sparsity"),          # M matters
             (dict(k=(0.95, 0.95, 0.8)), "ablation_k"),             # flat once: not falling strictly
             (dict(relu_plain=(0.0, 0.0, 0.1)), "ablation_superposition"),     # plain recovers at one ratio
             (dict(relu_anchored=(0.85, 0.5, 0.1)), "ablation_superposition"),  # anchored below 90% at once
             (dict(dens=(0.5, 0.93)), "ablation_interference_sparsity"),        # rises, but below 95%
             (dict(dens=(0.99, 0.99)), "ablation_interference_sparsity"),       # flat in density
             (dict(Ms=(0.8, 0.95)), "ablation_interference_sparsity")]          # M moves it 15 points
    for kw, key in cases:
        assert bench.ablations(_ablation_frame(**kw), ratios, {})[key].verdict == "not reproduced", kw


def test_ablation_verdicts_are_inconclusive_where_a_run_has_not_converged():
    v = bench.ablations(_ablation_frame(late=("k", 12)), [1.04, 1.3, 1.82], {})
    assert v["ablation_k"].verdict == "inconclusive" and "not converged: k = 12 (none)" in v["ablation_k"].evidence
    assert v["ablation_superposition"].verdict == "reproduced"


def test_ablation_verdicts_need_two_values_of_m():
    f = _ablation_frame()
    f = f[~((f["ablation"] == "M") & (f["setting"] == 0.5))]
    v = bench.ablations(f, [1.04, 1.3, 1.82], {})
    assert v["ablation_interference_sparsity"].verdict == "not testable here"
    assert v["ablation_k"].verdict == v["ablation_superposition"].verdict == "reproduced"


def test_ablation_verdicts_say_what_could_not_be_tested():
    f = _ablation_frame(ratios=(1.04, 1.3), relu_anchored=(1.0, 0.5))          # 1.82 was not generated
    f = f[~((f["ablation"] == "k") & (f["setting"] > 6))]                      # one k only
    f = f[~((f["ablation"] == "1 - S") & (f["setting"] == 0.1))]               # the paper's 1 - S missing
    v = bench.ablations(f, [1.04, 1.3, 1.82], {"n / n_p": [1.82]})
    assert all(x.verdict == "not testable here" for x in v.values())
    assert "(n / n_p = 1.82 not generated)" in v["ablation_superposition"].evidence
    assert "paper's 1 - S = 0.005, 0.1 not run" in v["ablation_interference_sparsity"].evidence


def test_tables_metrics_finds_the_paper_entries_that_m_gt_and_m_ip_cannot_both_describe():
    v = bench.tables_metrics()
    assert v.verdict == "false: counterexample" and v.numbers["n"] == 90
    assert [e for _, e in v.numbers["bad"]] == [f"n = {n}, anchored" for n in (800, 900, 1000, 1100, 1200)]
    assert "needs M_IP >= 0.939, reported 0.345" in v.evidence


def test_tables_metrics_holds_for_consistent_tables_and_allows_rounding():
    ok = {"T": {"a": (0.5, 0.475, 1.0, 0.9505)}}             # M_IP = tau M_GT within the printed digits
    assert bench.tables_metrics(ok).verdict == "holds"
    assert bench.tables_metrics({"T": {"a": (0.5, 0.47, 0.0, 0.1)}}).verdict == "false: counterexample"
    assert bench.tables_metrics({"T": {"a": (0.5, 0.47, 0.0, 0.1)}}, slack=0.01).verdict == "holds"


def test_table4_contradicts_table1_and_holds_for_agreeing_tables():
    v = bench.table4_vs_table1()
    assert v.verdict == "false: counterexample" and "Table 4 85.50% / 0.292, Table 1 0.00% / 0.246" in v.evidence
    agree = {1000: (0.0, 0.254, 0.0, 0.246)}
    assert bench.table4_vs_table1(table4=agree).verdict == "holds"


def test_table6_column_is_one_minus_s_and_a_differing_row_would_clear_it():
    v = bench.table6_label()
    assert v.verdict == "false: counterexample" and "equal Table 1's for 5 of 5" in v.evidence
    assert "n (1 - S) = 990" in v.evidence and "Table 1 has 10" in v.evidence
    other = dict(paper.TABLE6_AT_001, **{"TopK SAE": (0.5, 0.9, 0.6, 0.92)})
    assert bench.table6_label(table6_at=other).verdict == "holds"


def test_the_density_range_at_one_tenth_is_table_6s():
    assert paper.ABLATIONS["1 - S at 0.1"] == (0.956, 0.997)


def test_density_needs_two_values_and_finds_one_tenth_within_rounding():
    f = _ablation_frame()
    f.loc[(f["ablation"] == "1 - S") & (f["setting"] == 0.1), "setting"] = 1 - 0.9    # 0.09999999999999998
    assert bench.ablations(f, [1.04, 1.3, 1.82], {})["ablation_interference_sparsity"].verdict == "reproduced"
    one = f[~((f["ablation"] == "1 - S") & (f["setting"] == 0.01))]
    assert bench.ablations(one, [1.04, 1.3, 1.82], {})["ablation_interference_sparsity"].verdict == \
        "not testable here"


def test_zero_means_below_five_percent_in_every_rule():
    assert bench.ablations(_ablation_frame(relu_plain=0.03), [1.04, 1.3, 1.82], {})[
        "ablation_superposition"].verdict == "reproduced"
    assert bench.anchoring(_arm_curves(relu_anchored=0.03), 42, 8).verdict == "reproduced"
    assert bench.table1(_judged(final={"ReLU SAE": 0.03})).verdict == "reproduced"
    assert "M_IP 0.254 against 0.205" in bench.table4_vs_table1().evidence
