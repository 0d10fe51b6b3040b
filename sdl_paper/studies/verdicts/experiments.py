"""The verdicts of the experiment chapters (absorption, dead latents, resampling, real activations)."""
from __future__ import annotations

from . import Verdict, either


def _all_some_none(shown: dict[str, bool]) -> str:
    """'reproduced' when every entry is shown, 'holds under stated extra conditions' when some, else none."""
    if shown and all(shown.values()):
        return "reproduced"
    return "holds under stated extra conditions" if any(shown.values()) else "not reproduced"


# absorption_experiments ---------------------------------------------------------------------------------------


def versus_chance(share: float, se: float, chance: float) -> Verdict:
    """The absorbed child is the least-activated one (Thm 3.8's j*) more often than chance.

    "holds" when the share is above chance by more than two standard errors, "false: counterexample" when it is
    below chance by more than two, else "not reproduced".
    """
    evidence = f"{share:.2f} +- {se:.2f} against chance {chance:.2f}"
    if share > chance + 2 * se:
        return Verdict("holds", evidence, dict(share=share, se=se, chance=chance))
    verdict = "false: counterexample" if share < chance - 2 * se else "not reproduced"
    return Verdict(verdict, evidence, dict(share=share, se=se, chance=chance))


def absorbed_child_is_j_star(share_before: float, se_before: float, share_after: float,
                             chance: float) -> Verdict:
    """The absorbed child is Thm 3.8's j*, read before absorption sets in (the chapter's table row).

    The verdict of :func:`versus_chance` on the share before absorption; the share at the end is reported only.
    """
    verdict = versus_chance(share_before, se_before, chance).verdict
    return Verdict(verdict, f"{verdict}: before {share_before:.2f} +- {se_before:.2f}, end "
                            f"{share_after:.2f}, chance {chance:.2f}",
                   dict(share_before=share_before, se_before=se_before, share_after=share_after,
                        chance=chance))


READING = {  # (beyond chance after training, beyond chance before absorption)
    (True, False): "the link appears only after training, so on these runs it is a trace that "
                   "absorption leaves on the encoder, not a predictor of which child is absorbed",
    (True, True): "the least-activated child is absorbed more often than chance, before and after",
    (False, True): "the least-activated child predicts absorption early; the link fades later",
    (False, False): "no link to a_j beyond chance, before or after"}


def j_star_reading(share_after: float, se_after: float, share_before: float, se_before: float,
                   chance: float) -> Verdict:
    """What the j* measurement says, in words (the evidence is the reading).

    The verdict of :func:`versus_chance` before absorption; the reading is chosen by whether each of the two
    shares (end of training, before absorption) "holds" against chance.
    """
    after = versus_chance(share_after, se_after, chance).verdict
    before = versus_chance(share_before, se_before, chance).verdict
    return Verdict(before, READING[(after == "holds", before == "holds")],
                   dict(share_after=share_after, se_after=se_after, share_before=share_before,
                        se_before=se_before, chance=chance))


def reduces_absorption(diff: float, se: float, lower_in: int, n_seeds: int) -> Verdict:
    """A variant (tied weights, Matryoshka) absorbs fewer pairs than its reference, paired by seed.

    "holds" (evidence "lower in every seed") when the mean difference is below 0 by more than two standard
    errors and lower in every seed, "false: counterexample" ("higher beyond two s.e.") when it is above 0 by
    more than two, else "not reproduced" ("no clear difference").
    """
    numbers = dict(diff=diff, se=se, lower_in=lower_in, n_seeds=n_seeds)
    if diff + 2 * se < 0 and lower_in == n_seeds:
        return Verdict("holds", "lower in every seed", numbers)
    if diff - 2 * se > 0:
        return Verdict("false: counterexample", "higher beyond two s.e.", numbers)
    return Verdict("not reproduced", "no clear difference", numbers)


def grows_with_cooccurrence(full_lo: float, full_hi: float, every_seed: bool) -> Verdict:
    """Absorption grows with co-occurrence rho.

    "reproduced" when full absorption at the highest rho is above that at the lowest in every seed, else
    "not reproduced".
    """
    return either(every_seed, "reproduced", "not reproduced",
                  f"{full_lo:.3f} to {full_hi:.3f}, "
                  f"{'in every seed' if every_seed else 'not in every seed'}",
                  full_lo=full_lo, full_hi=full_hi, every_seed=every_seed)


def exp_absorption(n_absorbed: int, control_near_zero: bool, control_below_every_seed: bool,
                   control_max: float, j_star: str) -> Verdict:
    """Absorption occurs under sparsity pressure and the score is near zero on the control.

    "reproduced" when some pair is absorbed and every control is below a tenth of its hierarchy and below it in
    every seed, else "not reproduced"; ``j_star`` (the Thm 3.8 verdict) is reported only.
    """
    ok = n_absorbed > 0 and control_near_zero and control_below_every_seed
    return either(ok, "reproduced", "not reproduced",
                  f"{n_absorbed} absorbed pairs; control full <= {control_max:.3f}; Thm 3.8 j*: {j_star}",
                  n_absorbed=n_absorbed, control_near_zero=control_near_zero,
                  control_below_every_seed=control_below_every_seed, control_max=control_max)


# dead_neurons -------------------------------------------------------------------------------------------------


def dead_trend(factor: str, low_value: float, high_value: float, dead_low: float, dead_high: float,
               increasing: bool = True) -> Verdict:
    """The window-dead fraction rises (``increasing=False``: falls) with a factor.

    "holds" when the mean window-dead fraction at the largest value is above (below) that at the smallest, else
    "not reproduced" (the evidence then says "does not hold").
    """
    ok = dead_high > dead_low if increasing else dead_high < dead_low
    return either(ok, "holds", "not reproduced",
                  f"{'holds' if ok else 'does not hold'}: window-dead {dead_low:.2f} at {factor} = "
                  f"{low_value:g}, {dead_high:.2f} at {high_value:g}",
                  dead_low=dead_low, dead_high=dead_high, increasing=increasing)


def dead_counts_measure_training(share_floor: float, excess_lo: float, excess_hi: float,
                                 excess_real: bool, relu_lo: float, relu_hi: float) -> Verdict:
    """TopK pattern-dead counts measure training.

    "false: counterexample" (evidence "mostly not") when the floor n_q - kn is more than half of the pattern-dead
    latents at widths with a floor, else "holds" ("mostly").
    """
    ok = not share_floor > 0.5
    return either(ok, "holds", "false: counterexample",
                  f"{'mostly' if ok else 'mostly not'}: the floor n_q - kn is {share_floor:.0%} of the "
                  f"pattern-dead latents at widths with a floor; the excess share is {excess_lo:.1%} to "
                  f"{excess_hi:.1%} (beyond 2 s.e. at every width: {'yes' if excess_real else 'no'}); "
                  f"ReLU control without a floor: {relu_lo:.1%} to {relu_hi:.1%}",
                  share_floor=share_floor, excess_real=excess_real)


def exp_dead(n_checks: int, max_dead_grad: float) -> Verdict:
    """Pattern-dead latents get exactly zero block gradients during training.

    "reproduced" when the largest block gradient at a pattern-dead latent over all checks is exactly 0, else
    "not reproduced".
    """
    return either(max_dead_grad == 0, "reproduced", "not reproduced",
                  f"{n_checks} checks in training, max dead-latent gradient {max_dead_grad:.1e}",
                  n_checks=n_checks, max_dead_grad=max_dead_grad)


# resampling ---------------------------------------------------------------------------------------------------


def spike_then_lower(spike: float, spike_se: float, change: float, change_se: float, lower_in: int,
                     n_seeds: int, came_alive: float | None = None) -> Verdict:
    """One resampling run shows a loss spike, then a lower final loss than no remedy.

    "reproduced" (evidence "shown") when the spike ratio is above 1 and the relative change of the final loss
    below 0, each by more than two standard errors, else "not reproduced" ("not shown").
    """
    ok = bool(spike - 2 * spike_se > 1 and change + 2 * change_se < 0)
    alive = "" if came_alive is None else f"; came alive {came_alive:.0%}"
    return either(ok, "reproduced", "not reproduced",
                  f"{'shown' if ok else 'not shown'}: spike {spike:.2f} ± {spike_se:.2f}, final "
                  f"{change:+.1%} ± {change_se:.1%}, lower in {lower_in} of {n_seeds}{alive}",
                  spike=spike, spike_se=spike_se, change=change, change_se=change_se)


def exp_resampling(shown: dict[str, bool], relu_change: float, relu_change_se: float, relu_spike: float,
                   topk_change: float, topk_change_se: float, topk_spike: float) -> Verdict:
    """Resampling (the repeated recipe) causes a spike, then a lower final loss (Section 4, Figure 7).

    "reproduced" when :func:`spike_then_lower` shows it in every setting (``shown``: setting -> shown), "holds
    under stated extra conditions" when in some, else "not reproduced".
    """
    return Verdict(_all_some_none(shown),
                   f"ReLU {relu_change:+.1%}±{relu_change_se:.1%}, TopK {topk_change:+.1%}±"
                   f"{topk_change_se:.1%} (spike {relu_spike:.2f}, {topk_spike:.2f})",
                   dict(shown=dict(shown), relu_change=relu_change, topk_change=topk_change))


# real_activations ---------------------------------------------------------------------------------------------


def anchoring_helps(gains: dict[str, float], ses: dict[str, float]) -> Verdict:
    """Anchoring helps one method's non-anchored latents (gains and standard errors by metric).

    "reproduced" when some metric rises by more than two standard errors and none falls by more than two,
    else "not reproduced".
    """
    up = [m for m in gains if gains[m] - 2 * ses[m] > 0]
    down = [m for m in gains if gains[m] + 2 * ses[m] < 0]
    return either(bool(up) and not down, "reproduced", "not reproduced",
                  f"up: {', '.join(up) or 'none'}; down: {', '.join(down) or 'none'}",
                  gains=dict(gains), ses=dict(ses))


def anchoring_raises_recovery(topk_gain: float, topk_se: float, relu_gain: float, relu_se: float,
                              anchors_alone: float) -> Verdict:
    """Table 2 analogue: anchoring raises encoder M_IP of the other classes over all latents.

    "reproduced" (evidence "shown") when the gain is above 0 by more than two standard errors for both TopK and
    ReLU, else "not reproduced" ("not shown").
    """
    ok = bool(topk_gain - 2 * topk_se > 0) and bool(relu_gain - 2 * relu_se > 0)
    return either(ok, "reproduced", "not reproduced",
                  f"{'shown' if ok else 'not shown'}: TopK {topk_gain:+.3f} ± {topk_se:.3f}; "
                  f"anchors alone score {anchors_alone:.3f}",
                  topk_gain=topk_gain, topk_se=topk_se, relu_gain=relu_gain, relu_se=relu_se)


def anchoring_beyond_anchored(helped: dict[str, bool], topk: dict[str, float],
                              relu: dict[str, float]) -> Verdict:
    """Anchoring helps beyond the anchored latents (the chapter's table row; gains by metric per method).

    "reproduced" when :func:`anchoring_helps` holds for every method (``helped``: method -> helps), "holds under
    stated extra conditions" when for some, else "not reproduced".
    """
    names = ", ".join(m for m, ok in helped.items() if ok) or "no method"
    return Verdict(_all_some_none(helped),
                   f"shown for {names}: TopK enc {topk['M_IP_enc']:+.3f}, dec {topk['M_IP_dec']:+.3f}; "
                   f"ReLU enc {relu['M_IP_enc']:+.3f}, dec {relu['M_IP_dec']:+.3f}; decoder M_GT TopK "
                   f"{topk['M_GT_dec']:+.0%}, ReLU {relu['M_GT_dec']:+.0%}",
                   dict(helped=dict(helped)))


def real_anchoring(helped: dict[str, bool], non_anchored: dict[str, tuple[float, float]],
                   topk_gt_dec: float, topk_all_enc: float, anchors_alone: float) -> Verdict:
    """Anchoring raises recovery of the other classes, non-anchored latents (the ledger's reading of Table 2).

    Same rule as :func:`anchoring_beyond_anchored`; ``non_anchored`` maps a method to its (encoder, decoder) M_IP
    gain, reported only.
    """
    na = ", ".join(f"{m.split(' (')[0]} {enc:+.3f}/{dec:+.3f}" for m, (enc, dec) in non_anchored.items())
    return Verdict(_all_some_none(helped),
                   f"non-anchored latents, M_IP enc/dec: {na}; decoder M_GT TopK {topk_gt_dec:+.0%}; "
                   f"(all latents: TopK enc M_IP {topk_all_enc:+.3f}, anchors alone {anchors_alone:.3f})",
                   dict(helped=dict(helped), topk_gt_dec=topk_gt_dec, topk_all_enc=topk_all_enc))


def lower_final_loss(change: float, change_se: float, lower_in: int, n_seeds: int) -> Verdict:
    """Fig. 7 analogue: after resampling, a lower final loss than without (the chapter's table row).

    "reproduced" (evidence "shown") when the relative change of the final objective is below 0 by more than two
    standard errors, else "not reproduced" ("not shown").
    """
    ok = bool(change + 2 * change_se < 0)
    return either(ok, "reproduced", "not reproduced",
                  f"{'shown' if ok else 'not shown'}: {change:+.1%} ± {change_se:.1%}, "
                  f"lower in {lower_in} of {n_seeds}",
                  change=change, change_se=change_se, lower_in=lower_in)


def real_resampling(change: float, change_se: float, dead_at_event: float, spike: float) -> Verdict:
    """Resampling on real activations: a spike, then a lower final loss (the ledger's reading of Fig. 7).

    "reproduced" when the final objective's relative change is below 0 by more than two standard errors (the
    spike is asserted in the chapter), else "not reproduced".
    """
    return either(bool(change + 2 * change_se < 0), "reproduced", "not reproduced",
                  f"in a dying setting ({dead_at_event:.0%} dead at the event): spike {spike:.1f}x; "
                  f"final objective {change:+.1%}±{change_se:.1%}",
                  change=change, change_se=change_se, dead_at_event=dead_at_event, spike=spike)
