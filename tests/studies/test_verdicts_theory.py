"""The theory chapters' verdict rules, on made-up numbers: every outcome of every rule, and one exact evidence text."""
from __future__ import annotations

from sdl_paper.studies.verdicts import VERDICTS, Verdict
from sdl_paper.studies.verdicts import theory as v

HOLDS, EXTRA, FALSE, NOT_REPRODUCED, NOT_TESTABLE, INCONCLUSIVE = (VERDICTS[i] for i in (0, 1, 2, 3, 5, 6))


def test_the_verdict_words_are_the_ledgers():
    assert (HOLDS, EXTRA, FALSE, NOT_REPRODUCED, NOT_TESTABLE, INCONCLUSIVE) == (
        "holds", "holds under stated extra conditions", "false: counterexample", "not reproduced",
        "not testable here", "inconclusive")


# sigma_keep_zero

def test_sigma_keep_zero_holds_when_every_activation_keeps_or_zeroes():
    r = v.sigma_keep_zero(n_keep=7, n_activations=7)
    assert isinstance(r, Verdict) and r.verdict == HOLDS
    assert r.evidence == "7 of 7 activations keep or zero"
    assert r.numbers == {"n_keep": 7, "n_activations": 7}


def test_sigma_keep_zero_is_not_reproduced_when_one_activation_changes_a_coordinate():
    assert v.sigma_keep_zero(n_keep=6, n_activations=7).verdict == NOT_REPRODUCED


# unified

def test_unified_holds_when_every_decoder_matches_its_own_target():
    r = v.unified(n_lowered=4, n_matched=4, n_instantiations=4, margin_min=0.314)
    assert r.verdict == HOLDS
    assert r.evidence == ("4 of 4 decoders match their own target (M_IP margin over the controls >= 0.31): one "
                          "loop, views wired right (the claim is a definition)")


def test_unified_is_not_reproduced_when_a_decoder_misses_its_target_or_a_loss_does_not_fall():
    assert v.unified(n_lowered=4, n_matched=3, n_instantiations=4, margin_min=0.02).verdict == NOT_REPRODUCED
    assert v.unified(n_lowered=3, n_matched=4, n_instantiations=4, margin_min=0.3).verdict == NOT_REPRODUCED


# thm3_1

def test_thm3_1_holds_under_extra_conditions_when_every_check_passes():
    r = v.thm3_1(z_max=1.234, check_z_max=2.0, slope=1.987)
    assert r.verdict == EXTRA
    assert r.evidence == ("identity L_SDL = L~ + P(K>=2) C_2 certified (|z| <= 2.0), which implies the bound "
                          "when C < inf; gap slope 1.99; C = inf for our magnitudes (vacuous)")


def test_thm3_1_is_not_reproduced_when_the_one_feature_term_misses_l_tilde():
    assert v.thm3_1(z_max=5.0, check_z_max=2.0, slope=2.0).verdict == NOT_REPRODUCED


def test_thm3_1_is_not_reproduced_when_a_certificate_is_off_by_five_standard_errors():
    assert v.thm3_1(z_max=1.0, check_z_max=7.0, slope=2.0).verdict == NOT_REPRODUCED


# thm3_1_jumprelu

def test_thm3_1_jumprelu_is_false_when_the_bound_is_violated_below_p_star():
    r = v.thm3_1_jumprelu(violated=True, gap_coef=0.58333, bound_coef=3.24, p_star=0.18004)
    assert r.verdict == FALSE
    assert r.evidence == "gap 0.583p vs bound 3.24p^2: fails for p < 0.1800"


def test_thm3_1_jumprelu_holds_when_the_bound_is_not_violated():
    assert v.thm3_1_jumprelu(violated=False, gap_coef=0.5, bound_coef=3.0, p_star=0.1).verdict == HOLDS


# thm3_2_block

def test_thm3_2_block_holds_when_no_second_difference_is_negative():
    r = v.thm3_2_block(worst=2.5e-3, lines=120)
    assert r.verdict == HOLDS
    assert r.evidence == "min 2nd difference 2.5e-03 on 120 lines"


def test_thm3_2_block_is_false_when_a_block_line_bends_down():
    assert v.thm3_2_block(worst=-1e-6, lines=120).verdict == FALSE


# thm3_2_joint

def test_thm3_2_joint_holds_when_a_joint_line_bends_down():
    r = v.thm3_2_joint(curvature=-0.12345)
    assert r.verdict == HOLDS
    assert r.evidence == "joint curvature -0.123 along a line inside one region"


def test_thm3_2_joint_is_false_when_the_joint_line_is_convex():
    assert v.thm3_2_joint(curvature=0.0).verdict == FALSE


# thm3_2_across

def test_thm3_2_across_holds_when_some_long_line_bends_down():
    r = v.thm3_2_across(bent=3, n_lines=20, kinks=5)
    assert r.verdict == HOLDS
    assert r.evidence == "3 of 20 lines bend down, all 5 kinks at pattern changes"


def test_thm3_2_across_is_not_reproduced_when_no_line_bends_down():
    assert v.thm3_2_across(bent=0, n_lines=20, kinks=0).verdict == NOT_REPRODUCED


# thm3_1_batchtopk

def test_thm3_1_batchtopk_is_not_testable_when_a_code_depends_on_its_batch():
    r = v.thm3_1_batchtopk(max_change=1.234)
    assert r.verdict == NOT_TESTABLE
    assert r.evidence == "one input's code changes by up to 1.23 with its batch: L_SDL needs a per-sample sigma"
    assert v.thm3_1_batchtopk(max_change=0.0).verdict == EXTRA


# thm3_2_lsdl

def test_thm3_2_lsdl_is_false_when_the_exact_loss_bends_inside_one_region():
    r = v.thm3_2_lsdl(sd_sdl=-3.77e-4, sd_tilde=1e-7, pattern_kept=True, bend_at_switch=True)
    assert r.verdict == FALSE
    assert r.evidence == ("exact L_SDL along an encoder line inside one region: 2nd difference -3.8e-04 "
                          "(its L~ part: min 1.0e-07)")


def test_thm3_2_lsdl_is_inconclusive_without_a_bend_or_when_the_line_leaves_the_region():
    assert v.thm3_2_lsdl(sd_sdl=1e-8, sd_tilde=1e-7, pattern_kept=True, bend_at_switch=True).verdict == INCONCLUSIVE
    assert v.thm3_2_lsdl(sd_sdl=-1.0, sd_tilde=1e-7, pattern_kept=False, bend_at_switch=True).verdict == INCONCLUSIVE
    assert v.thm3_2_lsdl(sd_sdl=-1.0, sd_tilde=1e-7, pattern_kept=True, bend_at_switch=False).verdict == INCONCLUSIVE
    assert v.thm3_2_lsdl(sd_sdl=-1.0, sd_tilde=-1e-3, pattern_kept=True, bend_at_switch=True).verdict == INCONCLUSIVE


# thm3_2_literal_topk

def test_thm3_2_literal_topk_is_false_when_l_tilde_bends_inside_one_region():
    r = v.thm3_2_literal_topk(n_patterns=1, smallest_second_difference=-2.0, jump=1.996)
    assert r.verdict == FALSE
    assert r.evidence == "L~ jumps by 2.00 inside one '> 0' region (k = 2)"


def test_thm3_2_literal_topk_holds_when_the_segment_leaves_the_region():
    assert v.thm3_2_literal_topk(n_patterns=2, smallest_second_difference=-2.0, jump=2.0).verdict == HOLDS


def test_thm3_2_literal_topk_holds_when_l_tilde_is_convex_on_the_segment():
    assert v.thm3_2_literal_topk(n_patterns=1, smallest_second_difference=0.0, jump=0.0).verdict == HOLDS


# acs_partial_optimum

def test_acs_stall_point_is_a_counterexample_when_a_better_encoder_is_found():
    r = v.acs_partial_optimum(better=0.123456, gap=3.2e-4, on_boundary=2)
    assert r.verdict == FALSE
    assert r.evidence == (
        "An encoder in the same region reaches 0.12346 with the same decoder (lower by 3.2e-04). So the point "
        "where alternating minimisation stalls is *not* a partial optimum on the region (encoder in the region, "
        "decoder free). The better encoders lie towards the boundary (the solver's minimiser has 2 member "
        "pre-activations equal to 0, where the pattern is smaller); we do not claim that the region contains a "
        "partial optimum at all.")


def test_acs_stall_point_is_not_testable_when_the_solver_finds_nothing_better():
    r = v.acs_partial_optimum(better=0.5, gap=1e-12, on_boundary=0)
    assert r.verdict == NOT_TESTABLE
    assert r.evidence == (
        "The solver finds no better encoder in the closed region for this decoder (gap 1.0e-12); this is "
        "consistent with a partial optimum, though a solver's failure is not a proof of one.")


# thm3_3

def test_thm3_3_is_false_when_jumprelu_breaks_the_bound():
    r = v.thm3_3(theta=1.5, jumprelu_loss=4.0, jumprelu_bound=0.0, literal_loss=0.0, literal_bound=1.0,
                 relu_ratio_max=0.0123)
    assert r.verdict == FALSE
    assert r.evidence == "JumpReLU theta=1.5: L~ 4.000 > bound 0; ReLU L~/bound <= 1.2e-02"


def test_thm3_3_is_false_when_literal_topk_breaks_the_bound():
    r = v.thm3_3(theta=0.5, jumprelu_loss=0.0, jumprelu_bound=0.0, literal_loss=0.2, literal_bound=0.0,
                 relu_ratio_max=0.1)
    assert r.verdict == FALSE


def test_thm3_3_holds_when_both_stay_within_the_bound():
    r = v.thm3_3(theta=0.5, jumprelu_loss=0.0, jumprelu_bound=0.0, literal_loss=0.1, literal_bound=0.2,
                 relu_ratio_max=0.1)
    assert r.verdict == HOLDS


# thm3_3_global

def test_thm3_3_global_is_false_when_descent_from_the_ground_truth_goes_lower():
    r = v.thm3_3_global(truth=0.2588, end=3e-32, n_worlds_lower=6, n_worlds=6, truth_2d=0.0392, end_2d=3e-34)
    assert r.verdict == FALSE
    assert r.evidence == ("descent from the ground truth: L~ 0.259 -> 3e-32, lower in 6 of 6 worlds; "
                          "3 features in 2-D: 0.0392 -> 3e-34")
    assert v.thm3_3_global(truth=1.0, end=1.0, n_worlds_lower=0, n_worlds=6, truth_2d=0.04,
                           end_2d=0.0).verdict == FALSE


def test_thm3_3_global_is_inconclusive_when_descent_finds_nothing_lower():
    assert v.thm3_3_global(truth=0.0, end=0.0, n_worlds_lower=0, n_worlds=6, truth_2d=0.0,
                           end_2d=0.0).verdict == INCONCLUSIVE
    assert v.thm3_3_global(truth=1.0, end=0.6, n_worlds_lower=0, n_worlds=6, truth_2d=0.04,
                           end_2d=0.03).verdict == INCONCLUSIVE


# thm3_4

H = dict(hier_loss=0.0, hier_missed=6)


def test_thm3_4_holds_only_with_our_condition_when_the_hierarchical_instance_is_certified():
    r = v.thm3_4(constructed_loss=3e-31, best_cos=0.7071, gd_loss_max=2.4e-9, gd_mgt=0.125, **H)
    assert r.verdict == "holds under stated extra conditions"
    assert r.evidence == ("L~ 3e-31 at best cos 0.71; GD L~ 2e-09, M_GT 0.12; needs M_d > 0 (ours): under Def 3.2, "
                          "L~ 0e+00 with 6 features missed")


def test_thm3_4_holds_plainly_when_the_hierarchical_instance_does_not_break_it():
    r = v.thm3_4(constructed_loss=3e-31, best_cos=0.7071, gd_loss_max=2.4e-9, gd_mgt=0.125, hier_loss=0.1,
                 hier_missed=6)
    assert r.verdict == HOLDS
    assert v.thm3_4(constructed_loss=0.0, best_cos=0.5, gd_loss_max=0.0, gd_mgt=0.1, hier_loss=0.0,
                    hier_missed=0).verdict == HOLDS


def test_thm3_4_is_not_reproduced_when_the_construction_has_loss():
    assert v.thm3_4(constructed_loss=1e-10, best_cos=0.5, gd_loss_max=0.0, gd_mgt=0.1, **H).verdict == NOT_REPRODUCED


def test_thm3_4_is_not_reproduced_when_the_construction_recovers_a_feature():
    assert v.thm3_4(constructed_loss=0.0, best_cos=0.99, gd_loss_max=0.0, gd_mgt=0.1, **H).verdict == NOT_REPRODUCED


def test_thm3_4_is_not_reproduced_when_descent_recovers_the_truth():
    assert v.thm3_4(constructed_loss=0.0, best_cos=0.5, gd_loss_max=0.0, gd_mgt=0.9, **H).verdict == NOT_REPRODUCED


# ex3_5

def test_ex3_5_holds_at_loss_one_with_zero_gradients():
    r = v.ex3_5(loss=1.0, grad_E=0.0, grad_D=0.0)
    assert r.verdict == HOLDS
    assert r.evidence == "L~ = 1.000, block gradients 0e+00"


def test_ex3_5_is_false_when_a_block_gradient_is_not_zero():
    assert v.ex3_5(loss=1.0, grad_E=0.0, grad_D=1e-15).verdict == FALSE


def test_ex3_5_is_false_when_the_loss_is_not_one():
    assert v.ex3_5(loss=1.5, grad_E=0.0, grad_D=0.0).verdict == FALSE


# thm3_6_construction

def test_thm3_6_construction_is_false_when_it_fails_with_unequal_and_equal_weights():
    r = v.thm3_6_construction(frac_unequal=0.9, frac_equal=0.254)
    assert r.verdict == FALSE
    assert r.evidence == "fails in 90% (unequal M_d), 25% (equal M_d) of partitions"


def test_thm3_6_construction_holds_when_it_never_fails_with_one_kind_of_weights():
    assert v.thm3_6_construction(frac_unequal=0.9, frac_equal=0.0).verdict == HOLDS


# thm3_6

_NO_CEX = dict(gap_a=1.0, sign_a=0.1, gap_b=1.0, top_eig_b=2.0, sign_b=0.1, n_none=0, n_random=40)


def test_thm3_6_holds_when_every_pattern_has_a_single_signed_eigenvector():
    r = v.thm3_6(**_NO_CEX)
    assert r.verdict == HOLDS
    assert r.evidence == "no partial minimum: Ex 3.5 at M = (1, 2), 0 of 40 random patterns"


def test_thm3_6_is_false_on_example_a():
    assert v.thm3_6(**_NO_CEX | {"sign_a": 0.0}).verdict == FALSE


def test_thm3_6_is_false_on_example_b():
    assert v.thm3_6(**_NO_CEX | {"sign_b": -0.2}).verdict == FALSE


def test_thm3_6_is_false_when_a_random_pattern_has_no_partial_minimum():
    assert v.thm3_6(**_NO_CEX | {"n_none": 3}).verdict == FALSE


def test_thm3_6_ignores_example_a_when_its_eigenvalues_coincide():
    assert v.thm3_6(**_NO_CEX | {"sign_a": -1.0, "gap_a": 0.0}).verdict == HOLDS


# dead_zero_grad

def test_dead_zero_grad_holds_when_every_dead_latent_gradient_is_exactly_zero():
    r = v.dead_zero_grad(dead_max=0.0, constructed_max=0.0, n_dead=17)
    assert r.verdict == HOLDS
    assert r.evidence == "max dead-latent gradient 0.0e+00 over 17 dead latents"


def test_dead_zero_grad_is_false_when_a_trained_dead_latent_gets_gradient():
    assert v.dead_zero_grad(dead_max=1e-30, constructed_max=0.0, n_dead=17).verdict == FALSE


def test_dead_zero_grad_is_false_when_a_constructed_dead_latent_gets_gradient():
    assert v.dead_zero_grad(dead_max=0.0, constructed_max=1e-30, n_dead=17).verdict == FALSE


# thm3_8

_SPLITS = dict(n_split_ok=3, n_parents=3, n_tested=10, fails_full=0, split2_realized=True, grad_E=1e-12,
               tie_realized=False, n_lost=2, n_relu_blocked=2, n_relu_children=3)


def test_thm3_8_is_false_when_relu_blocks_every_child():
    r = v.thm3_8(**_SPLITS | {"n_relu_blocked": 3})
    assert r.verdict == FALSE
    assert r.evidence == ("false for ReLU as stated; holds for threshold activations with c > 0, a unique "
                          "least-activated child and the rescaling the construction omits: 14/14 splits at c>0; "
                          "tie loses 2; ReLU 2-D: 3/3 blocked")


def test_thm3_8_holds_under_extra_conditions_when_a_tie_breaks_the_construction():
    assert v.thm3_8(**_SPLITS).verdict == EXTRA


def test_thm3_8_holds_when_even_the_tie_splits():
    assert v.thm3_8(**_SPLITS | {"tie_realized": True}).verdict == HOLDS


def test_thm3_8_is_not_reproduced_when_a_tested_instance_fails():
    r = v.thm3_8(**_SPLITS | {"fails_full": 1, "split2_realized": False})
    assert r.verdict == NOT_REPRODUCED
    assert r.evidence.startswith("12/14 splits at c>0")
