"""The verdicts of the experiment chapters (absorption, dead latents, resampling, real activations)."""
from __future__ import annotations

from . import Verdict, either

MIN_SEEDS = 8          # seeds a fragile effect needs before it is judged (the developers' guide)
SMALLEST_EFFECT = 0.01  # ours: a final-loss change smaller than 1% does not count as "lower"


def _all_some_none(shown: dict[str, bool]) -> str:
    """'reproduced' when every entry is shown, 'holds under stated extra conditions' when some, else none."""
    if shown and all(shown.values()):
        return "reproduced"
    return "holds under stated extra conditions" if any(shown.values()) else "not reproduced"


# absorption_experiments ---------------------------------------------------------------------------------------


def versus_chance(test: dict, alpha: float = 0.05, min_power: float = 0.8) -> Verdict:
    """The absorbed child is the least-activated one (Thm 3.8's j*) more often than chance, per parent.

    ``test``: :func:`sdl_paper.studies.absorption_experiments.j_star_test` (exact permutation null, per parent).
    "holds" when p_more < ``alpha``; "not reproduced" when p_less < ``alpha`` (less often than chance: the
    question is ours, so this contradicts no claim of the paper) or when the test had power >= ``min_power``
    against its planted effect; "inconclusive" otherwise (too few informative parents).
    """
    evidence = (f"j* absorbed in {test['observed']} of {test['parents']} parents, chance {test['expected']:.1f} "
                f"(p = {test['p_more']:.3f}; power {test['power']:.0%} at lift {test['lift']:.1f})")
    if test["parents"] and test["p_more"] < alpha:
        return Verdict("holds", evidence, dict(test))
    if test["parents"] and test["p_less"] < alpha:
        return Verdict("not reproduced", f"less often than chance: {evidence}", dict(test))
    return Verdict("not reproduced" if test["power"] >= min_power else "inconclusive", evidence, dict(test))


def absorbed_child_is_j_star(before: dict, after: dict) -> Verdict:
    """The absorbed child is Thm 3.8's j*, read before absorption sets in (the chapter's table row).

    The verdict of :func:`versus_chance` on the test before absorption; the end of training is reported only.
    """
    verdict = versus_chance(before)
    return Verdict(verdict.verdict, f"{verdict.verdict}: before, {verdict.evidence}; end, j* absorbed in "
                                    f"{after['observed']} of {after['parents']} (chance {after['expected']:.1f}, "
                                    f"p = {after['p_more']:.3f})",
                   dict(before=dict(before), after=dict(after)))


READING = {  # (beyond chance after training, beyond chance before absorption)
    (True, False): "the link appears only after training, so on these runs it is a trace that "
                   "absorption leaves on the encoder, not a predictor of which child is absorbed",
    (True, True): "the least-activated child is absorbed more often than chance, before and after",
    (False, True): "the least-activated child predicts absorption early; the link fades later",
    (False, False): "no link to a_j beyond chance, before or after"}


def j_star_reading(before: dict, after: dict) -> Verdict:
    """What the j* measurement says, in words (the evidence is the reading).

    The verdict of :func:`versus_chance` before absorption; the reading is chosen by whether each of the two
    tests (end of training, before absorption) "holds".
    """
    b, a = versus_chance(before).verdict, versus_chance(after).verdict
    return Verdict(b, READING[(a == "holds", b == "holds")], dict(before=dict(before), after=dict(after)))


def reduces_absorption(diff: float, se: float, lower_in: int, n_seeds: int) -> Verdict:
    """A variant (tied weights, Matryoshka) absorbs fewer pairs than its reference, paired by seed.

    "holds" (evidence "lower in every seed") when the mean difference is below 0 by more than two standard
    errors and lower in every seed, "false: counterexample" ("higher beyond two s.e.") when it is above 0 by
    more than two, else "not reproduced" ("no clear difference") with at least :data:`MIN_SEEDS` seeds and
    "inconclusive" with fewer (a null result on a few seeds is no result).
    """
    numbers = dict(diff=diff, se=se, lower_in=lower_in, n_seeds=n_seeds)
    if n_seeds < 2 or se != se:                        # one seed: no spread to judge by
        return Verdict("inconclusive", "no spread over seeds", numbers)
    if diff + 2 * se < 0 and lower_in == n_seeds:
        return Verdict("holds", "lower in every seed", numbers)
    if diff - 2 * se > 0:
        return Verdict("false: counterexample", "higher beyond two s.e.", numbers)
    if n_seeds < MIN_SEEDS:
        return Verdict("inconclusive", f"no clear difference on {n_seeds} seeds", numbers)
    return Verdict("not reproduced", "no clear difference", numbers)


def grows_with_cooccurrence(full_lo: float, full_hi: float, every_seed: bool, n_seeds: int) -> Verdict:
    """Absorption grows with co-occurrence rho.

    "reproduced" when full absorption at the highest rho is above that at the lowest in every seed; otherwise
    "not reproduced" with at least :data:`MIN_SEEDS` seeds, "inconclusive" with fewer.
    """
    no = "not reproduced" if n_seeds >= MIN_SEEDS else "inconclusive"
    return either(every_seed, "reproduced", no,
                  f"{full_lo:.3f} to {full_hi:.3f}, "
                  f"{'in every seed' if every_seed else 'not in every seed'} of {n_seeds}",
                  full_lo=full_lo, full_hi=full_hi, every_seed=every_seed, n_seeds=n_seeds)


def exp_absorption(rises_with_pressure: dict[str, bool], n_absorbed: int, control_near_zero: bool,
                   control_below_every_seed: bool, control_max: float, j_star: str) -> Verdict:
    """Absorption occurs under sparsity pressure in a hierarchy and not in its control (our test of what Thm 3.8
    makes possible).

    ``rises_with_pressure``: per (method, world), whether the fraction of absorbed pairs at the strongest pressure
    exceeds that at the weakest in every seed. "reproduced" when it rises for some (method, world), some pair is
    absorbed, and every control is below a tenth of its hierarchy and below it in every seed; "not reproduced"
    otherwise; ``j_star`` (the Thm 3.8 child test) is reported only.
    """
    rising = [k for k, ok in rises_with_pressure.items() if ok]
    ok = bool(rising) and n_absorbed > 0 and control_near_zero and control_below_every_seed
    return either(ok, "reproduced", "not reproduced",
                  f"rises with pressure in every seed for {len(rising)} of {len(rises_with_pressure)} (method, "
                  f"world); {n_absorbed} absorbed pairs; control full <= {control_max:.3f}; Thm 3.8 j*: {j_star}",
                  rising=rising, n_absorbed=n_absorbed, control_near_zero=control_near_zero,
                  control_below_every_seed=control_below_every_seed, control_max=control_max)


# dead_neurons -------------------------------------------------------------------------------------------------


def shape(means: list[float]) -> str:
    """'rises' or 'falls' when every step between consecutive values of a factor goes one way, else 'not
    monotone (largest at the i-th value)'."""
    d = [b - a for a, b in zip(means, means[1:])]
    if d and all(x > 0 for x in d):
        return "rises"
    if d and all(x < 0 for x in d):
        return "falls"
    return f"not monotone (largest at value {max(range(len(means)), key=means.__getitem__) + 1} of {len(means)})"


def dead_trend(factor: str, values: list[float], means: list[float], ses: list[float],
               increasing: bool = True) -> Verdict:
    """The window-dead fraction rises (``increasing=False``: falls) with a factor (the field's lore, not the
    paper's claim), from its mean and standard error over seeds at each of the factor's ``values`` (ascending).

    "holds" when the difference between the largest and the smallest value goes the predicted way by more than
    two standard errors (sqrt(se_lo^2 + se_hi^2)); "not reproduced" when it goes the other way by more than two;
    else "inconclusive". The evidence states the measured shape over all values.
    """
    diff, se = means[-1] - means[0], (ses[0] ** 2 + ses[-1] ** 2) ** 0.5
    signed = diff if increasing else -diff
    verdict = "holds" if signed > 2 * se else "not reproduced" if signed < -2 * se else "inconclusive"
    return Verdict(verdict, f"{verdict}: window-dead {means[0]:.2f} at {factor} = {values[0]:g}, {means[-1]:.2f} "
                            f"at {values[-1]:g}; {shape(means)} over {len(values)} values",
                   dict(values=list(values), means=list(means), ses=list(ses), increasing=increasing))


def dead_persist(window: tuple[float, float], pattern: tuple[float, float], n_seeds: int,
                 zero_grad_checks: int) -> Verdict:
    """Dead latents stay dead (our reading of "gradient descent can become trapped" at dead neurons; the v3 blog:
    "permanently trapped"), from the revival rates (mean, s.e. over seeds) of latents dead by the window rule and
    by an empty pattern (:func:`sdl_paper.studies.dead_latents.revival_frame`: the share of window-dead latents
    that fire again later, and of pattern-dead latents with a non-empty pattern at the end), each by its own
    definition.

    "inconclusive" with fewer than :data:`MIN_SEEDS` seeds; "reproduced" when both rates are below 5% by more than
    two standard errors; "not reproduced" when either is above 5% by more than two; else "inconclusive". The
    zero-gradient checks are reported as the mechanism's illustration, not counted.
    """
    (w, w_se), (p, p_se) = window, pattern
    numbers = dict(window=w, window_se=w_se, pattern=p, pattern_se=p_se, n_seeds=n_seeds)
    text = (f"revive: {w:.0%} ± {w_se:.0%} of window-dead latents fire again, {p:.0%} ± {p_se:.0%} of "
            f"pattern-dead ones regain a pattern ({n_seeds} seeds; zero gradient at pattern-dead latents in "
            f"{zero_grad_checks} checks, by construction)")
    if n_seeds < MIN_SEEDS:
        return Verdict("inconclusive", f"too few seeds: {text}", numbers)
    if w + 2 * w_se < 0.05 and p + 2 * p_se < 0.05:
        return Verdict("reproduced", text, numbers)
    if w - 2 * w_se > 0.05 or p - 2 * p_se > 0.05:
        return Verdict("not reproduced", text, numbers)
    return Verdict("inconclusive", text, numbers)


def dead_counts_measure_training(share_floor: float, excess_lo: float, excess_hi: float,
                                 excess_real: bool, relu_lo: float, relu_hi: float) -> Verdict:
    """TopK pattern-dead counts measure training.

    "false: counterexample" (evidence "mostly not") when the floor n_q - kn is more than half of the pattern-dead
    latents at widths with a floor, "inconclusive" when no width has a floor, else "holds" ("mostly").
    """
    if share_floor != share_floor:
        return Verdict("inconclusive", "no width with a floor n_q - kn > 0",
                       dict(share_floor=share_floor, excess_real=excess_real))
    ok = not share_floor > 0.5
    return either(ok, "holds", "false: counterexample",
                  f"{'mostly' if ok else 'mostly not'}: the floor n_q - kn is {share_floor:.0%} of the "
                  f"pattern-dead latents at widths with a floor; the excess share is {excess_lo:.1%} to "
                  f"{excess_hi:.1%} (beyond 2 s.e. at every width: {'yes' if excess_real else 'no'}); "
                  f"ReLU control without a floor: {relu_lo:.1%} to {relu_hi:.1%}",
                  share_floor=share_floor, excess_real=excess_real)


# resampling ---------------------------------------------------------------------------------------------------


def lower_final_loss(change: float, change_se: float, lower_in: int, n_seeds: int) -> Verdict:
    """Resampling lowers the final loss (the paper's Fig. 7; one rule for every chapter that judges it).

    ``change``: the mean over seeds of the relative change of the final objective against no remedy on the same
    seed, ``change_se`` its standard error. "inconclusive" with fewer than :data:`MIN_SEEDS` seeds; "reproduced"
    when the change is below -:data:`SMALLEST_EFFECT` by more than two standard errors; "not reproduced" when it
    is above -:data:`SMALLEST_EFFECT` by more than two (no decrease worth counting); else "inconclusive".
    """
    numbers = dict(change=change, change_se=change_se, lower_in=lower_in, n_seeds=n_seeds)
    text = f"{change:+.1%} ± {change_se:.1%}, lower in {lower_in} of {n_seeds}"
    if n_seeds < MIN_SEEDS:
        return Verdict("inconclusive", f"too few seeds ({n_seeds} < {MIN_SEEDS}): {text}", numbers)
    if change + 2 * change_se < -SMALLEST_EFFECT:
        return Verdict("reproduced", f"lower: {text}", numbers)
    if change - 2 * change_se > -SMALLEST_EFFECT:
        return Verdict("not reproduced", f"not lower: {text}", numbers)
    return Verdict("inconclusive", f"within the seeds' spread: {text}", numbers)


def exp_resampling(runs: dict[str, Verdict], spikes: dict[str, float]) -> Verdict:
    """Resampling on the paper's schedule lowers the final loss, per setting (``runs``: setting ->
    :func:`lower_final_loss`; ``spikes``: the loss ratio at the resampling steps, reported only).

    "reproduced" when every setting is reproduced, "holds under stated extra conditions" when some, "not
    reproduced" when every setting is not reproduced, else "inconclusive".
    """
    verdicts = [v.verdict for v in runs.values()]
    if all(v == "reproduced" for v in verdicts):
        verdict = "reproduced"
    elif "reproduced" in verdicts:
        verdict = "holds under stated extra conditions"
    else:
        verdict = "not reproduced" if all(v == "not reproduced" for v in verdicts) else "inconclusive"
    return Verdict(verdict, "; ".join(f"{s}: {v.evidence} (spike {spikes[s]:.2f})" for s, v in runs.items()),
                   {s: dict(v.numbers) for s, v in runs.items()})


# real_activations ---------------------------------------------------------------------------------------------


def anchoring_helps(gains: dict[str, float], ses: dict[str, float], over_control: dict[str, float],
                    control_ses: dict[str, float]) -> Verdict:
    """Anchoring helps one method's non-anchored latents (by metric: the gain over no anchoring and over the
    control, anchors at random directions in the span of the anchored ones, each with its standard error).

    "reproduced" when some metric rises by more than two standard errors over both and none falls by more than
    two against no anchoring, else "not reproduced".
    """
    up = [m for m in gains if gains[m] - 2 * ses[m] > 0 and over_control[m] - 2 * control_ses[m] > 0]
    down = [m for m in gains if gains[m] + 2 * ses[m] < 0]
    return either(bool(up) and not down, "reproduced", "not reproduced",
                  f"up beyond the control: {', '.join(up) or 'none'}; down: {', '.join(down) or 'none'}",
                  gains=dict(gains), ses=dict(ses), over_control=dict(over_control))


def anchoring_raises_recovery(topk: tuple[float, float, float, float], relu: tuple[float, float, float, float],
                              anchors_alone: float) -> Verdict:
    """Table 2 analogue: anchoring raises encoder M_IP of the other classes over all latents; per method
    (gain, its s.e., gain over the random-span control, its s.e.).

    "reproduced" (evidence "shown") when, for both TopK and ReLU, the gain and the gain over the control are
    above 0 by more than two standard errors, else "not reproduced" ("not shown").
    """
    ok = all(g - 2 * se > 0 and c - 2 * cse > 0 for g, se, c, cse in (topk, relu))
    return either(ok, "reproduced", "not reproduced",
                  f"{'shown' if ok else 'not shown'}: TopK {topk[0]:+.3f} ± {topk[1]:.3f} (over the control "
                  f"{topk[2]:+.3f} ± {topk[3]:.3f}), ReLU {relu[0]:+.3f} ± {relu[1]:.3f} (over the control "
                  f"{relu[2]:+.3f} ± {relu[3]:.3f}); anchors alone score {anchors_alone:.3f}",
                  topk=list(topk), relu=list(relu), anchors_alone=anchors_alone)


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


def real_anchoring(helped: dict[str, bool], non_anchored: dict[str, tuple[float, float, float]],
                   topk_gt_dec: float, topk_all_enc: float, anchors_alone: float) -> Verdict:
    """Anchoring raises recovery of the other classes, non-anchored latents (the ledger's reading of Table 2).

    Same rule as :func:`anchoring_beyond_anchored`; ``non_anchored`` maps a method to its encoder and decoder M_IP
    gains and the encoder gain of the random-span control, reported only.
    """
    na = ", ".join(f"{m.split(' (')[0]} {enc:+.3f}/{dec:+.3f} (enc over the control {ctrl:+.3f})"
                   for m, (enc, dec, ctrl) in non_anchored.items())
    return Verdict(_all_some_none(helped),
                   f"non-anchored latents, M_IP enc/dec: {na}; decoder M_GT TopK {topk_gt_dec:+.0%}; "
                   f"(all latents: TopK enc M_IP {topk_all_enc:+.3f}, anchors alone {anchors_alone:.3f})",
                   dict(helped=dict(helped), topk_gt_dec=topk_gt_dec, topk_all_enc=topk_all_enc))


def real_resampling(final: Verdict, dead_at_event: float, spike: float) -> Verdict:
    """Resampling on real activations lowers the final loss (the ledger's reading of Fig. 7): the verdict of
    :func:`lower_final_loss` (``final``), with the dead share at the event and the spike reported beside it."""
    return Verdict(final.verdict, f"{final.evidence}; {dead_at_event:.0%} dead at the event, spike {spike:.1f}x",
                   dict(final.numbers, dead_at_event=dead_at_event, spike=spike))
