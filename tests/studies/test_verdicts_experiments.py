"""The verdict rules of the experiment chapters (sdl_paper.studies.verdicts.experiments), on made-up numbers: every
outcome of every rule, and the exact evidence text of one input."""
import pytest

from sdl_paper.studies.verdicts import experiments as rules

# absorption_experiments


def test_a_share_above_chance_by_two_standard_errors_holds():
    v = rules.versus_chance(0.6, 0.05, 0.25)
    assert v.verdict == "holds" and v.numbers == dict(share=0.6, se=0.05, chance=0.25)
    assert v.evidence == "0.60 +- 0.05 against chance 0.25"


def test_a_share_below_chance_by_two_standard_errors_is_a_counterexample():
    assert rules.versus_chance(0.05, 0.05, 0.25).verdict == "false: counterexample"


def test_a_share_within_two_standard_errors_of_chance_is_not_reproduced():
    assert rules.versus_chance(0.3, 0.05, 0.25).verdict == "not reproduced"
    assert rules.versus_chance(0.3, float("nan"), 0.25).verdict == "not reproduced"


def test_the_j_star_row_takes_the_verdict_before_absorption_and_reports_the_end():
    v = rules.absorbed_child_is_j_star(share_before=0.6, se_before=0.05, share_after=0.1, chance=0.25)
    assert v.verdict == "holds"
    assert v.evidence == "holds: before 0.60 +- 0.05, end 0.10, chance 0.25"
    assert rules.absorbed_child_is_j_star(0.05, 0.05, 0.9, 0.25).verdict == "false: counterexample"
    assert rules.absorbed_child_is_j_star(0.25, 0.05, 0.9, 0.25).verdict == "not reproduced"


@pytest.mark.parametrize("after, before, words", [
    (0.9, 0.25, "the link appears only after training"),
    (0.9, 0.9, "absorbed more often than chance, before and after"),
    (0.25, 0.9, "predicts absorption early; the link fades later"),
    (0.25, 0.25, "no link to a_j beyond chance, before or after"),
])
def test_the_j_star_reading_depends_on_both_shares_against_chance(after, before, words):
    v = rules.j_star_reading(share_after=after, se_after=0.05, share_before=before, se_before=0.05,
                             chance=0.25)
    assert words in v.evidence
    assert v.verdict == ("holds" if before == 0.9 else "not reproduced")


def test_the_j_star_reading_is_the_full_sentence():
    v = rules.j_star_reading(0.25, 0.05, 0.25, 0.05, 0.25)
    assert v.evidence == "no link to a_j beyond chance, before or after"


def test_a_variant_lower_in_every_seed_beyond_two_standard_errors_reduces_absorption():
    v = rules.reduces_absorption(diff=-0.3, se=0.05, lower_in=3, n_seeds=3)
    assert (v.verdict, v.evidence) == ("holds", "lower in every seed")


def test_a_variant_higher_beyond_two_standard_errors_is_a_counterexample():
    v = rules.reduces_absorption(diff=0.3, se=0.05, lower_in=0, n_seeds=3)
    assert (v.verdict, v.evidence) == ("false: counterexample", "higher beyond two s.e.")


def test_a_variant_lower_but_not_in_every_seed_shows_no_clear_difference():
    v = rules.reduces_absorption(diff=-0.3, se=0.05, lower_in=2, n_seeds=3)
    assert (v.verdict, v.evidence) == ("not reproduced", "no clear difference")


def test_absorption_grows_with_cooccurrence_when_it_rises_in_every_seed():
    v = rules.grows_with_cooccurrence(full_lo=0.0123, full_hi=0.4567, every_seed=True)
    assert (v.verdict, v.evidence) == ("reproduced", "0.012 to 0.457, in every seed")


def test_absorption_rising_not_in_every_seed_is_not_reproduced():
    v = rules.grows_with_cooccurrence(full_lo=0.1, full_hi=0.2, every_seed=False)
    assert (v.verdict, v.evidence) == ("not reproduced", "0.100 to 0.200, not in every seed")


def test_absorption_is_reproduced_with_absorbed_pairs_and_a_clean_control():
    v = rules.exp_absorption(n_absorbed=12, control_near_zero=True, control_below_every_seed=True,
                             control_max=0.00312, j_star="not reproduced")
    assert v.verdict == "reproduced"
    assert v.evidence == "12 absorbed pairs; control full <= 0.003; Thm 3.8 j*: not reproduced"


@pytest.mark.parametrize("n, near_zero, every_seed", [(0, True, True), (5, False, True), (5, True, False)])
def test_absorption_without_absorbed_pairs_or_with_a_dirty_control_is_not_reproduced(n, near_zero, every_seed):
    assert rules.exp_absorption(n, near_zero, every_seed, 0.0, "holds").verdict == "not reproduced"


# dead_neurons


def test_a_dead_fraction_rising_with_the_factor_holds():
    v = rules.dead_trend("n_q / n", 1.0, 8.0, dead_low=0.1, dead_high=0.456)
    assert v.verdict == "holds"
    assert v.evidence == "holds: window-dead 0.10 at n_q / n = 1, 0.46 at 8"


def test_a_dead_fraction_falling_against_the_prediction_is_not_reproduced_and_does_not_hold():
    v = rules.dead_trend("S", 0.9, 0.998, dead_low=0.3, dead_high=0.2)
    assert v.verdict == "not reproduced"
    assert v.evidence == "does not hold: window-dead 0.30 at S = 0.9, 0.20 at 0.998"


def test_a_decreasing_prediction_holds_when_the_dead_fraction_falls():
    assert rules.dead_trend("init scale", 0.1, 10, 0.3, 0.2, increasing=False).verdict == "holds"
    assert rules.dead_trend("init scale", 0.1, 10, 0.2, 0.3, increasing=False).verdict == "not reproduced"


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
    assert rules.dead_counts_measure_training(float("nan"), 0.1, 0.2, False, 0.0, 0.1).verdict == "holds"


def test_dead_latents_with_exactly_zero_gradients_reproduce_the_claim():
    v = rules.exp_dead(n_checks=20, max_dead_grad=0.0)
    assert v.verdict == "reproduced"
    assert v.evidence == "20 checks in training, max dead-latent gradient 0.0e+00"


def test_any_nonzero_dead_latent_gradient_is_not_reproduced():
    assert rules.exp_dead(n_checks=20, max_dead_grad=1e-12).verdict == "not reproduced"


# resampling


def test_a_spike_then_a_lower_loss_beyond_two_standard_errors_is_shown():
    v = rules.spike_then_lower(spike=3.0, spike_se=0.2, change=-0.1, change_se=0.01, lower_in=3, n_seeds=3,
                               came_alive=0.5)
    assert v.verdict == "reproduced"
    assert v.evidence == ("shown: spike 3.00 ± 0.20, final -10.0% ± 1.0%, lower in 3 of 3; "
                          "came alive 50%")


@pytest.mark.parametrize("spike, change", [(1.1, -0.1), (3.0, 0.0)])
def test_a_missing_spike_or_a_loss_not_lower_is_not_shown(spike, change):
    v = rules.spike_then_lower(spike, 0.2, change, 0.01, 1, 3)
    assert v.verdict == "not reproduced" and v.evidence.startswith("not shown: ")
    assert "came alive" not in v.evidence


@pytest.mark.parametrize("shown, verdict", [
    ({"ReLU + L1": True, "TopK": True}, "reproduced"),
    ({"ReLU + L1": True, "TopK": False}, "holds under stated extra conditions"),
    ({"ReLU + L1": False, "TopK": False}, "not reproduced"),
])
def test_resampling_is_reproduced_in_every_setting_some_or_none(shown, verdict):
    v = rules.exp_resampling(shown, -0.05, 0.01, 2.5, 0.02, 0.013, 1.25)
    assert v.verdict == verdict
    assert v.evidence == "ReLU -5.0%±1.0%, TopK +2.0%±1.3% (spike 2.50, 1.25)"


# real_activations


def test_anchoring_helps_with_a_metric_up_and_none_down():
    v = rules.anchoring_helps({"M_IP_enc": 0.1, "M_GT_dec": -0.01}, {"M_IP_enc": 0.01, "M_GT_dec": 0.01})
    assert (v.verdict, v.evidence) == ("reproduced", "up: M_IP_enc; down: none")


@pytest.mark.parametrize("gains", [{"a": 0.1, "b": -0.1}, {"a": 0.01, "b": 0.0}])
def test_anchoring_with_a_metric_down_or_none_up_does_not_help(gains):
    v = rules.anchoring_helps(gains, {"a": 0.01, "b": 0.01})
    assert v.verdict == "not reproduced"
    assert v.evidence in ("up: a; down: b", "up: none; down: none")


def test_anchoring_raises_recovery_when_both_methods_gain_beyond_two_standard_errors():
    v = rules.anchoring_raises_recovery(topk_gain=0.05, topk_se=0.01, relu_gain=0.03, relu_se=0.01,
                                        anchors_alone=0.4)
    assert (v.verdict, v.evidence) == ("reproduced", "shown: TopK +0.050 ± 0.010; anchors alone score 0.400")


def test_anchoring_gaining_for_one_method_only_does_not_raise_recovery():
    v = rules.anchoring_raises_recovery(0.05, 0.01, 0.01, 0.01, 0.4)
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
                             {"TopK (k=4)": (0.0123, -0.002), "ReLU + L1 (0.1)": (0.001, 0.0)},
                             topk_gt_dec=0.05, topk_all_enc=0.2, anchors_alone=0.4)
    assert v.verdict == verdict
    assert v.evidence == ("non-anchored latents, M_IP enc/dec: TopK +0.012/-0.002, ReLU + L1 +0.001/+0.000; "
                          "decoder M_GT TopK +5%; (all latents: TopK enc M_IP +0.200, anchors alone 0.400)")


def test_a_final_loss_lower_beyond_two_standard_errors_is_shown():
    v = rules.lower_final_loss(change=-0.05, change_se=0.01, lower_in=3, n_seeds=3)
    assert (v.verdict, v.evidence) == ("reproduced", "shown: -5.0% ± 1.0%, lower in 3 of 3")


def test_a_final_loss_within_two_standard_errors_is_not_shown():
    v = rules.lower_final_loss(change=-0.01, change_se=0.01, lower_in=2, n_seeds=3)
    assert (v.verdict, v.evidence) == ("not reproduced", "not shown: -1.0% ± 1.0%, lower in 2 of 3")


def test_resampling_on_real_activations_is_reproduced_by_a_lower_final_objective():
    v = rules.real_resampling(change=-0.05, change_se=0.01, dead_at_event=0.6, spike=3.21)
    assert v.verdict == "reproduced"
    assert v.evidence == "in a dying setting (60% dead at the event): spike 3.2x; final objective -5.0%±1.0%"


def test_resampling_on_real_activations_without_a_lower_final_objective_is_not_reproduced():
    assert rules.real_resampling(0.01, 0.01, 0.6, 3.0).verdict == "not reproduced"

