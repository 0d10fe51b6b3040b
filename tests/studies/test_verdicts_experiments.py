"""The verdict rules of the experiment chapters (sdl_paper.studies.verdicts.experiments), on made-up numbers: every
outcome of every rule, and the exact evidence text of one input."""
import pytest

from sdl_paper.studies.verdicts import experiments as rules

# absorption_experiments


def _test(observed, p_more, p_less, power=0.9, parents=40, expected=10.0):
    return dict(parents=parents, observed=observed, expected=expected, p_more=p_more, p_less=p_less, power=power,
                lift=0.5, detectable=True)


def test_j_star_absorbed_beyond_the_permutation_null_holds():
    v = rules.versus_chance(_test(20, 0.001, 0.999))
    assert v.verdict == "holds" and v.numbers["observed"] == 20
    assert v.evidence == "j* absorbed in 20 of 40 parents, chance 10.0 (p = 0.001; power 90% at lift 0.5)"


def test_j_star_absorbed_less_often_than_chance_is_not_reproduced_and_says_so():
    v = rules.versus_chance(_test(2, 0.999, 0.002))
    assert v.verdict == "not reproduced" and v.evidence.startswith("less often than chance: ")


def test_within_chance_is_not_reproduced_with_power_and_inconclusive_without():
    assert rules.versus_chance(_test(11, 0.4, 0.7)).verdict == "not reproduced"
    assert rules.versus_chance(_test(11, 0.4, 0.7, power=0.3)).verdict == "inconclusive"
    assert rules.versus_chance(_test(0, 1.0, 1.0, power=0.0, parents=0, expected=0.0)).verdict == "inconclusive"


def test_the_j_star_row_takes_the_verdict_before_absorption_and_reports_the_end():
    v = rules.absorbed_child_is_j_star(before=_test(20, 0.001, 0.999), after=_test(9, 0.6, 0.5))
    assert v.verdict == "holds"
    assert v.evidence == ("holds: before, j* absorbed in 20 of 40 parents, chance 10.0 (p = 0.001; power 90% at "
                          "lift 0.5); end, j* absorbed in 9 of 40 (chance 10.0, p = 0.600)")
    assert rules.absorbed_child_is_j_star(_test(2, 0.999, 0.002), _test(20, 0.001, 0.999)).verdict == \
        "not reproduced"
    assert rules.absorbed_child_is_j_star(_test(11, 0.4, 0.7), _test(20, 0.001, 0.999)).verdict == \
        "not reproduced"


HI, NULL = _test(20, 0.001, 0.999), _test(10, 0.5, 0.6)


@pytest.mark.parametrize("after, before, words", [
    (HI, NULL, "the link appears only after training"),
    (HI, HI, "absorbed more often than chance, before and after"),
    (NULL, HI, "predicts absorption early; the link fades later"),
    (NULL, NULL, "no link to a_j beyond chance, before or after"),
])
def test_the_j_star_reading_depends_on_both_tests(after, before, words):
    v = rules.j_star_reading(before=before, after=after)
    assert words in v.evidence
    assert v.verdict == ("holds" if before is HI else "not reproduced")


def test_a_variant_lower_in_every_seed_beyond_two_standard_errors_reduces_absorption():
    v = rules.reduces_absorption(diff=-0.3, se=0.05, lower_in=3, n_seeds=3)
    assert (v.verdict, v.evidence) == ("holds", "lower in every seed")


def test_a_variant_higher_beyond_two_standard_errors_is_a_counterexample():
    v = rules.reduces_absorption(diff=0.3, se=0.05, lower_in=0, n_seeds=3)
    assert (v.verdict, v.evidence) == ("false: counterexample", "higher beyond two s.e.")


def test_a_variant_lower_but_not_in_every_seed_shows_no_clear_difference():
    v = rules.reduces_absorption(diff=-0.3, se=0.05, lower_in=7, n_seeds=8)
    assert (v.verdict, v.evidence) == ("not reproduced", "no clear difference")
    v = rules.reduces_absorption(diff=-0.3, se=0.05, lower_in=2, n_seeds=3)
    assert (v.verdict, v.evidence) == ("inconclusive", "no clear difference on 3 seeds")


def test_a_variant_on_one_seed_is_inconclusive():
    assert rules.reduces_absorption(diff=-0.3, se=float("nan"), lower_in=1, n_seeds=1).verdict == "inconclusive"


def test_absorption_grows_with_cooccurrence_when_it_rises_in_every_seed():
    v = rules.grows_with_cooccurrence(full_lo=0.0123, full_hi=0.4567, every_seed=True, n_seeds=3)
    assert (v.verdict, v.evidence) == ("reproduced", "0.012 to 0.457, in every seed of 3")


def test_absorption_rising_not_in_every_seed_is_not_reproduced_on_enough_seeds():
    v = rules.grows_with_cooccurrence(full_lo=0.1, full_hi=0.2, every_seed=False, n_seeds=8)
    assert (v.verdict, v.evidence) == ("not reproduced", "0.100 to 0.200, not in every seed of 8")
    assert rules.grows_with_cooccurrence(0.1, 0.2, False, n_seeds=3).verdict == "inconclusive"


RISES = {"ReLU, pairs": True, "TopK, pairs": False}


def test_absorption_is_reproduced_when_it_rises_with_pressure_and_the_control_is_clean():
    v = rules.exp_absorption(RISES, n_absorbed=12, control_near_zero=True, control_below_every_seed=True,
                             control_max=0.00312, j_star="not reproduced")
    assert v.verdict == "reproduced"
    assert v.evidence == ("rises with pressure in every seed for 1 of 2 (method, world); 12 absorbed pairs; "
                          "control full <= 0.003; Thm 3.8 j*: not reproduced")


@pytest.mark.parametrize("rises, n, near_zero, every_seed", [
    (RISES, 0, True, True), (RISES, 5, False, True), (RISES, 5, True, False),
    ({"ReLU, pairs": False, "TopK, pairs": False}, 5, True, True)])
def test_absorption_without_a_rise_absorbed_pairs_or_a_clean_control_is_not_reproduced(rises, n, near_zero,
                                                                                        every_seed):
    assert rules.exp_absorption(rises, n, near_zero, every_seed, 0.0, "holds").verdict == "not reproduced"


# dead_neurons


def test_a_dead_fraction_rising_with_the_factor_beyond_two_standard_errors_holds():
    v = rules.dead_trend("n_q / n", [1, 2, 8], [0.1, 0.2, 0.456], [0.01, 0.01, 0.02])
    assert v.verdict == "holds"
    assert v.evidence == "holds: window-dead 0.10 at n_q / n = 1, 0.46 at 8; rises over 3 values"


def test_a_dead_fraction_falling_against_the_prediction_is_not_reproduced():
    v = rules.dead_trend("S", [0.9, 0.99, 0.998], [0.3, 0.35, 0.2], [0.01, 0.01, 0.01])
    assert v.verdict == "not reproduced"
    assert v.evidence == ("not reproduced: window-dead 0.30 at S = 0.9, 0.20 at 0.998; not monotone (largest at "
                          "value 2 of 3) over 3 values")


def test_a_difference_within_two_standard_errors_is_inconclusive_whatever_its_sign():
    assert rules.dead_trend("lr", [1, 2], [0.30, 0.32], [0.01, 0.01]).verdict == "inconclusive"
    assert rules.dead_trend("lr", [1, 2], [0.32, 0.30], [0.01, 0.01]).verdict == "inconclusive"


def test_a_decreasing_prediction_holds_when_the_dead_fraction_falls():
    assert rules.dead_trend("init scale", [0.1, 10], [0.3, 0.2], [0.01, 0.01], increasing=False).verdict == "holds"
    assert rules.dead_trend("init scale", [0.1, 10], [0.2, 0.3], [0.01, 0.01],
                            increasing=False).verdict == "not reproduced"


def test_dead_counts_mostly_floor_are_a_counterexample_to_measuring_training():
    v = rules.dead_counts_measure_training(share_floor=0.75, excess_lo=0.012, excess_hi=0.1,
                                           excess_real=True, relu_lo=0.0, relu_hi=0.05)
    assert v.verdict == "false: counterexample"
    assert v.evidence == ("mostly not: the floor n_q - kn is 75% of the pattern-dead latents at widths with a "
                          "floor; the excess share is 1.2% to 10.0% (beyond 2 s.e. at every width: yes); "
                          "ReLU control without a floor: 0.0% to 5.0%")


def test_dead_counts_mostly_beyond_the_floor_measure_training():
    v = rules.dead_counts_measure_training(0.25, 0.1, 0.2, False, 0.0, 0.1)
    assert v.verdict == "holds" and v.evidence.startswith("mostly: ")
    assert "every width: no)" in v.evidence
    assert rules.dead_counts_measure_training(float("nan"), 0.1, 0.2, False, 0.0, 0.1).verdict == "inconclusive"


def test_dead_latents_that_never_fire_again_stay_dead():
    v = rules.dead_persist((0.0, 0.0), (0.01, 0.005), n_seeds=8, zero_grad_checks=80)
    assert v.verdict == "reproduced"
    assert v.evidence == ("revive: 0% ± 0% of window-dead latents fire again, 1% ± 0% of pattern-dead ones regain "
                          "a pattern (8 seeds; zero gradient at pattern-dead latents in 80 checks, by construction)")


@pytest.mark.parametrize("window, pattern, n_seeds, verdict", [
    ((1.0, 0.0), (0.11, 0.01), 8, "not reproduced"),      # the measurement: they fire again
    ((0.0, 0.0), (0.11, 0.01), 8, "not reproduced"),
    ((0.04, 0.01), (0.0, 0.0), 8, "inconclusive"),        # 5% within two standard errors
    ((0.0, 0.0), (0.0, 0.0), 3, "inconclusive"),          # too few seeds for a verdict
])
def test_revival_beyond_five_percent_is_not_reproduced(window, pattern, n_seeds, verdict):
    assert rules.dead_persist(window, pattern, n_seeds, 10).verdict == verdict


# resampling


@pytest.mark.parametrize("change, se, n_seeds, verdict, words", [
    (-0.05, 0.01, 8, "reproduced", "lower: -5.0% ± 1.0%, lower in 7 of 8"),
    (0.02, 0.005, 8, "not reproduced", "not lower: +2.0% ± 0.5%, lower in 7 of 8"),
    (-0.02, 0.004, 8, "reproduced", "lower: -2.0% ± 0.4%, lower in 7 of 8"),
    (-0.003, 0.001, 8, "not reproduced", "not lower: -0.3% ± 0.1%, lower in 7 of 8"),
    (-0.004, 0.002, 8, "not reproduced", "not lower: -0.4% ± 0.2%, lower in 7 of 8"),
    (-0.014, 0.008, 8, "inconclusive", "within the seeds' spread: -1.4% ± 0.8%, lower in 7 of 8"),
    (-0.06, 0.007, 4, "inconclusive", "too few seeds (4 < 8): -6.0% ± 0.7%, lower in 7 of 4"),
])
def test_the_one_resampling_rule_lower_final_loss(change, se, n_seeds, verdict, words):
    v = rules.lower_final_loss(change=change, change_se=se, lower_in=7, n_seeds=n_seeds)
    assert (v.verdict, v.evidence) == (verdict, words)


def _final(verdict):
    return {"reproduced": rules.lower_final_loss(-0.05, 0.01, 8, 8),
            "not reproduced": rules.lower_final_loss(0.02, 0.005, 0, 8),
            "inconclusive": rules.lower_final_loss(-0.014, 0.008, 6, 8)}[verdict]


@pytest.mark.parametrize("relu, topk, verdict", [
    ("reproduced", "reproduced", "reproduced"),
    ("reproduced", "not reproduced", "holds under stated extra conditions"),
    ("not reproduced", "not reproduced", "not reproduced"),
    ("inconclusive", "not reproduced", "inconclusive"),
])
def test_resampling_is_reproduced_in_every_setting_some_none_or_inconclusive(relu, topk, verdict):
    v = rules.exp_resampling({"ReLU + L1": _final(relu), "TopK": _final(topk)}, {"ReLU + L1": 2.5, "TopK": 1.25})
    assert v.verdict == verdict
    assert v.evidence.startswith(f"ReLU + L1: {_final(relu).evidence} (spike 2.50); TopK: ")


# real_activations


def test_anchoring_helps_with_a_metric_up_beyond_no_anchoring_and_the_control_and_none_down():
    v = rules.anchoring_helps({"M_IP_enc": 0.1, "M_GT_dec": -0.01}, {"M_IP_enc": 0.01, "M_GT_dec": 0.01},
                              {"M_IP_enc": 0.05, "M_GT_dec": 0.0}, {"M_IP_enc": 0.01, "M_GT_dec": 0.01})
    assert (v.verdict, v.evidence) == ("reproduced", "up beyond the control: M_IP_enc; down: none")


def test_anchoring_that_the_control_matches_does_not_help():
    # the case: random directions in the span of the anchors gain as much as the anchors themselves
    v = rules.anchoring_helps({"M_IP_enc": 0.1}, {"M_IP_enc": 0.01}, {"M_IP_enc": -0.02}, {"M_IP_enc": 0.02})
    assert (v.verdict, v.evidence) == ("not reproduced", "up beyond the control: none; down: none")


@pytest.mark.parametrize("gains", [{"a": 0.1, "b": -0.1}, {"a": 0.01, "b": 0.0}])
def test_anchoring_with_a_metric_down_or_none_up_does_not_help(gains):
    se = {"a": 0.01, "b": 0.01}
    v = rules.anchoring_helps(gains, se, {"a": 0.1, "b": 0.1}, se)
    assert v.verdict == "not reproduced"
    assert v.evidence in ("up beyond the control: a; down: b", "up beyond the control: none; down: none")


def test_anchoring_raises_recovery_when_both_methods_gain_beyond_no_anchoring_and_the_control():
    v = rules.anchoring_raises_recovery(topk=(0.05, 0.01, 0.04, 0.01), relu=(0.03, 0.01, 0.03, 0.01),
                                        anchors_alone=0.4)
    assert (v.verdict, v.evidence) == ("reproduced", "shown: TopK +0.050 ± 0.010 (over the control +0.040 ± "
                                                     "0.010), ReLU +0.030 ± 0.010 (over the control +0.030 ± "
                                                     "0.010); anchors alone score 0.400")


@pytest.mark.parametrize("topk, relu", [((0.05, 0.01, 0.04, 0.01), (0.01, 0.01, 0.03, 0.01)),
                                        ((0.05, 0.01, -0.01, 0.01), (0.03, 0.01, 0.03, 0.01))])
def test_anchoring_gaining_for_one_method_only_or_not_over_the_control_does_not_raise_recovery(topk, relu):
    v = rules.anchoring_raises_recovery(topk, relu, 0.4)
    assert v.verdict == "not reproduced" and v.evidence.startswith("not shown: ")


_GAINS = {"M_IP_enc": 0.0123, "M_IP_dec": -0.002, "M_GT_dec": 0.05}


@pytest.mark.parametrize("helped, verdict, names", [
    ({"TopK (k=4)": True, "ReLU + L1 (0.1)": True}, "reproduced", "TopK (k=4), ReLU + L1 (0.1)"),
    ({"TopK (k=4)": False, "ReLU + L1 (0.1)": True}, "holds under stated extra conditions", "ReLU + L1 (0.1)"),
    ({"TopK (k=4)": False, "ReLU + L1 (0.1)": False}, "not reproduced", "no method"),
])
def test_anchoring_beyond_the_anchored_latents_for_both_methods_one_or_none(helped, verdict, names):
    v = rules.anchoring_beyond_anchored(helped, _GAINS, _GAINS)
    assert v.verdict == verdict
    assert v.evidence == (f"shown for {names}: TopK enc +0.012, dec -0.002; ReLU enc +0.012, dec -0.002; "
                          "decoder M_GT TopK +5%, ReLU +5%")


@pytest.mark.parametrize("helped, verdict", [
    ((True, True), "reproduced"), ((True, False), "holds under stated extra conditions"),
    ((False, False), "not reproduced")])
def test_the_ledger_reading_of_anchoring_follows_the_same_rule(helped, verdict):
    v = rules.real_anchoring(dict(zip(("TopK (k=4)", "ReLU + L1 (0.1)"), helped)),
                             {"TopK (k=4)": (0.0123, -0.002, 0.02), "ReLU + L1 (0.1)": (0.001, 0.0, 0.0)},
                             topk_gt_dec=0.05, topk_all_enc=0.2, anchors_alone=0.4)
    assert v.verdict == verdict
    assert v.evidence == ("non-anchored latents, M_IP enc/dec: TopK +0.012/-0.002 (enc over the control +0.020), "
                          "ReLU + L1 +0.001/+0.000 (enc over the control +0.000); decoder M_GT TopK +5%; (all "
                          "latents: TopK enc M_IP +0.200, anchors alone 0.400)")


def test_resampling_on_real_activations_takes_the_one_rules_verdict():
    v = rules.real_resampling(_final("reproduced"), dead_at_event=0.6, spike=3.21)
    assert v.verdict == "reproduced"
    assert v.evidence == "lower: -5.0% ± 1.0%, lower in 8 of 8; 60% dead at the event, spike 3.2x"
    assert rules.real_resampling(_final("inconclusive"), 0.6, 3.0).verdict == "inconclusive"
