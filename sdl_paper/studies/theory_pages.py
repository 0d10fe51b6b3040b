"""The analyses behind the theory chapters (framework, loss approximation, biconvexity, global and spurious minima,
absorption), each a function that a chapter calls in one short cell: checks of the generator and the activations,
the four instantiations through one training loop, the loss-approximation sweep, and the chapters' small
constructions and descents. Random draws happen in the order the chapters have always made them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..data import ground_truth
from ..model import Config, to_sdl
from ..theory import absorption as ab, activations, instantiations, metrics, minima as mn, regions as rg
from ..theory import approximation as ap
from ..theory.framework import SDL, loss_summary, per_feature_loss
from ..training import init_state, train


# --- framework ----------------------------------------------------------------------------------------------------

def code_checks(x: Tensor, M_d: Tensor, S: float, c_min: float, beta: float) -> dict:
    """Monte Carlo checks of sampled codes against the generator's closed forms (eq-md).

    Args:
        x: (N, n) codes x(s) drawn from ``Coefficients(n, S, c_min, beta)``.
        M_d: (n,) the closed-form weights M_d = P(only d) E[x_d^2 | x_d > 0].

    Returns a dict: ``rate`` (fraction of non-zero entries) and ``z_rate`` (its distance from 1 - S in binomial
    standard errors); ``mc``, ``se`` (n,) the per-feature Monte Carlo M_d and its standard errors, ``z_feat`` (n,)
    their distances from M_d; ``total`` (N,) per sample x_d^2 if feature d alone is active, else 0; ``z_md`` the
    distance of its mean from sum_d M_d, and ``z_wrong`` the distance from a wrong closed form (beta^2 in place of
    2 beta^2): the check's power. Distances are in standard errors.
    """
    rate = (x > 0).double().mean().item()
    rate_se = ((1 - S) * S / x.numel()) ** 0.5
    z_rate = abs(rate - (1 - S)) / rate_se
    mc, se = ground_truth.estimate_M_d(x)
    single = ((x > 0).sum(1) == 1).double()
    total = (x.double() ** 2 * single[:, None]).sum(1)     # per sample: x_d^2 if d alone is active, else 0
    z_md = abs(total.mean() - M_d.sum()).item() / (total.std() / len(x) ** 0.5).item()
    z_feat = (mc - M_d).abs() / se
    wrong = M_d.sum().item() * (1 - beta ** 2 / ground_truth.second_moment(c_min, beta))
    z_wrong = abs(total.mean().item() - wrong) / (total.std() / len(x) ** 0.5).item()
    return {"rate": rate, "z_rate": z_rate, "mc": mc, "se": se, "z_feat": z_feat, "total": total, "z_md": z_md,
            "z_wrong": z_wrong}


def activation_checks(specs: list[str], z: Tensor, t_b: Tensor) -> pd.DataFrame:
    """The keep-or-zero property and homogeneity of each activation spec (duplicates dropped, order kept).

    Args:
        z: (B, n_q) pre-activations; t_b: (B, 1) one positive factor per sample.

    Returns a DataFrame indexed by ``activation`` with columns ``keeps or zeroes`` (sigma(z)_i in {0, z_i} for
    every entry), ``fraction kept``, ``common t`` (sigma(1.7 z) = 1.7 sigma(z)), ``per-sample t``
    (sigma(t_b z) = t_b sigma(z)) and ``declared homogeneous`` (what the activation says of itself).
    """
    rows = []
    for spec in dict.fromkeys(specs):
        sigma = activations.make_activation(spec)
        rows.append({"activation": spec, "keeps or zeroes": activations.keeps_or_zeroes(sigma, z),
                     "fraction kept": (sigma(z) != 0).float().mean().item(),
                     "common t": torch.allclose(sigma(1.7 * z), 1.7 * sigma(z)),
                     "per-sample t": torch.allclose(sigma(t_b * z), t_b * sigma(z)),
                     "declared homogeneous": sigma.homogeneous})
    return pd.DataFrame(rows).set_index("activation")


def mismatched_target(world: ground_truth.World, inst: instantiations.Instantiation) -> torch.Tensor:
    """A control target of the shape of ``inst``'s W_r (n_r, n) that its decoder should NOT match: for a one-layer
    target, another layer of ``world`` (the first one not read as target); for a stacked target, the same layers
    with the features of every layer after the first shifted by one (d -> d + 1 mod n), which breaks the link
    between a feature's parts in different layers."""
    t = list(inst.targets)
    if len(t) == 1:
        others = [i for i in range(len(world.layers)) if i != t[0]]
        if not others:
            raise ValueError("the mismatched target of a one-layer target needs a world with two layers or more")
        return world.layers[others[0]]
    parts = [world.layers[t[0]]] + [world.layers[i].roll(1, dims=1) for i in t[1:]]
    return torch.cat(parts) / len(t) ** 0.5


def train_instantiations(world: ground_truth.World, activation: str, n_q: int, steps: int, batch_size: int,
                         lr: float, seed: int, device=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every instantiation (SAE, tied SAE, transcoder, crosscoder) trained through one loop on views of ``world``.

    Each trains n_q latents with ``activation``, no L1 and Adam (``steps``, ``batch_size``, ``lr``) from seed
    ``seed``; losses are measured on one sample seeded ``seed + 2``. Returns (summary, curves): ``summary`` indexed
    by ``method`` with n_p, n_r, L_SDL before and after training, the zero-dictionary loss E||x_r||^2, L~ after
    (eq-ltilde), the explained variance, the recovery metrics M_GT / M_IP over encoder rows and decoder columns,
    and two controls for the decoder's M_IP: at initialisation (``M_IP_dec start``) and against
    :func:`mismatched_target` (``M_IP_dec mismatched``);
    ``curves`` the batch loss logged every 10 steps (columns method, step, batch loss).
    """
    results, curves = [], []
    for name, inst in instantiations.INSTANTIATIONS.items():
        view = inst.view(world)
        cfg = Config.theory(method="relu", activation=activation, l1=0.0, tied=inst.tied, steps=steps,
                     batch_size=batch_size, lr=lr, log_every=10)
        start = init_state(1, view.n_p, n_q, view.n_r, cfg, [seed]).params
        start_model = to_sdl(start, cfg)
        before = loss_summary(start_model, view, seed=seed + 2)["L_SDL"]
        state = train(view, cfg, n_q, [seed], device=device, desc=name)
        model = to_sdl({k: v.cpu() for k, v in state.params.items()}, cfg)
        ev = loss_summary(model, view, seed=seed + 2)
        with torch.no_grad():
            l_tilde = per_feature_loss(model, view).item()
        results.append({"method": name, "n_p": view.n_p, "n_r": view.n_r, "L_SDL before": before,
                        "L_SDL after": ev["L_SDL"], "zero-dictionary loss": ev["baseline"], "L~ after": l_tilde,
                        "explained variance": ev["explained_variance"],
                        **metrics.recovery(model.W_E.detach(), model.W_D.detach(), view.W_p, view.W_r),
                        "M_IP_dec start": metrics.max_inner_product(view.W_r, decoder=start_model.W_D.detach()),
                        "M_IP_dec mismatched": metrics.max_inner_product(mismatched_target(world, inst),
                                                                         decoder=model.W_D.detach())})
        hist = pd.DataFrame(state.history)
        curves.append(pd.DataFrame({"method": name, "step": hist["step"], "batch loss": hist["loss"].str[0]}))
    return pd.DataFrame(results).set_index("method"), pd.concat(curves)


# --- loss approximation -------------------------------------------------------------------------------------------

def random_and_trained(gt: ground_truth.GroundTruth, activations_: list[str], n_q: int, steps: int,
                       seed: int) -> dict[str, SDL]:
    """For each activation spec (duplicates dropped): a random SDL model with n_q latents (seed ``seed``) under the
    key ``"random, <spec>"`` and one trained on ``gt`` (ReLU method without L1, ``steps`` Adam steps, batches of 256,
    lr 3e-3) under ``"trained, <spec>"``."""
    models = {}
    for act in dict.fromkeys(activations_):
        models[f"random, {act}"] = SDL(gt.W_p.shape[0], n_q, activation=act, seed=seed)
        cfg = Config.theory(method="relu", activation=act, l1=0.0, steps=steps, batch_size=256, lr=3e-3)
        state = train(gt, cfg, n_q, [seed], desc=f"train {act}")
        models[f"trained, {act}"] = to_sdl(state.params, cfg)
    return models


def gap_sweep(models: dict[str, SDL], gt: ground_truth.GroundTruth, gaps, n_samples: int,
              seed: int) -> pd.DataFrame:
    """The loss split L_SDL = single + gap (:func:`~sdl_paper.theory.approximation.loss_split`) of every model at
    every sparsity gap p = 1 - S in ``gaps`` (level i seeded ``seed + i``).

    Returns one row per (model, level), models outer: columns ``model``, ``1-S``, the split's terms (L_tilde,
    single, gap, L_SDL, ...) and ``relative gap`` = gap / L_SDL.
    """
    rows = []
    for name, model in models.items():
        for i, p in enumerate(gaps):
            split = ap.loss_split(model, gt.with_sparsity(1 - p), n_samples, seed + i)
            rows.append({"model": name, "1-S": p, **split})
    sweep = pd.DataFrame(rows)
    sweep["relative gap"] = sweep["gap"] / sweep["L_SDL"]
    return sweep


# --- biconvexity --------------------------------------------------------------------------------------------------

def literal_topk_segment() -> dict:
    """L~ along the segment W_E(t) = A + t (B - A), t in [0, 1] (100 points, avoiding the tie at t = 1/2), of the
    literal-TopK example (:func:`~sdl_paper.theory.regions.literal_topk_example`, a single feature, M_1 = 1).

    Returns ``M_1``; ``P_pos``, the set of '> 0' patterns met on the segment (as flat tuples); ``ends_differ``,
    whether the '!= 0' patterns of A and B differ; ``L_lit`` and ``L_ours`` (100,), L~ under literal TopK and under
    ReLU after TopK (``topk:2``); ``jump``, the largest step of ``L_lit``, and ``sd_lit``, its smallest second
    difference.
    """
    ex = rg.literal_topk_example()
    lit, ours, gt1, A, B = ex["sigma"], activations.make_activation("topk:2"), ex["gt"], ex["A"], ex["B"]
    tt = torch.linspace(0, 1, 100, dtype=torch.float64)                # avoids the tie at t = 1/2
    P_pos = {tuple(rg.positive_pattern(A + t * (B - A), lit, gt1.W_p).flatten().tolist()) for t in tt}
    ends_differ = not torch.equal(rg.pattern(A, lit, gt1.W_p), rg.pattern(B, lit, gt1.W_p))
    L_lit, L_ours = (rg.line_losses(A, ex["W_D"], gt1, sig, tt, B - A) for sig in (lit, ours))
    jump, sd_lit = L_lit.diff().abs().max().item(), rg.second_differences(L_lit).min().item()
    return {"M_1": gt1.M_d().item(), "P_pos": P_pos, "ends_differ": ends_differ, "L_lit": L_lit,
            "L_ours": L_ours, "jump": jump, "sd_lit": sd_lit}


# --- global minima ------------------------------------------------------------------------------------------------

def sae_view(n_p: int, n: int, M: float, seed: int) -> ground_truth.GroundTruth:
    """The SAE view (W_p = W_r, n_p x n, S = 0.99) of a one-layer world with interference <= M, in float64 with
    columns renormalised to unit norm in that precision."""
    W = ground_truth.make_world(n_p, n, 0.99, M, n_layers=1, seed=seed).layers[0].double()
    W = W / W.norm(dim=0)                                # unit columns to float64 precision
    return ground_truth.GroundTruth(W, W, ground_truth.Coefficients(n, 0.99))


def descent_runs(gt: ground_truth.GroundTruth, n_q: int, seeds: list[int], sigma, steps: int,
                 lr: float = 0.01) -> pd.DataFrame:
    """Full-batch Adam on L~ (:func:`~sdl_paper.theory.minima.descend`) from one random start per seed: W_E (n_q, n_p)
    then W_D (n_p, n_q), both 0.25 times standard normal draws from a generator seeded with the seed.

    Returns one row per seed: ``seed``, ``L~ start``, ``L~ end``, ground-truth recovery of the end point
    (``M_GT encoder``, ``M_GT decoder``, ``M_IP encoder``) and the latent counts of its pattern
    (:func:`~sdl_paper.theory.regions.pattern_counts`).
    """
    n_p, rows = gt.W_p.shape[0], []
    for s in seeds:
        gen = torch.Generator().manual_seed(s)
        E0 = 0.25 * torch.randn(n_q, n_p, generator=gen, dtype=torch.float64)
        D0 = 0.25 * torch.randn(n_p, n_q, generator=gen, dtype=torch.float64)
        E, D, hist = mn.descend(E0, D0, gt, sigma, steps=steps, lr=lr)
        rows.append({"seed": s, "L~ start": rg.tilde_loss(E0, D0, gt, sigma).item(),
                     "L~ end": hist[-1], "M_GT encoder": metrics.gt_recovery(gt.W_p, encoder=E),
                     "M_GT decoder": metrics.gt_recovery(gt.W_p, decoder=D),
                     "M_IP encoder": metrics.max_inner_product(gt.W_p, encoder=E),
                     **rg.pattern_counts(rg.pattern(E, sigma, gt.W_p))})
    return pd.DataFrame(rows)


# --- spurious minima ----------------------------------------------------------------------------------------------

def partition_checks(W_p: Tensor, settings: dict, n_q: int, n_poly: int, sigma,
                     generator: torch.Generator) -> pd.DataFrame:
    """The paper's construction for Theorem 3.6 against ours (:func:`~sdl_paper.theory.minima.compare_constructions`)
    on random partitions of the n features of W_p (n_p x n) over n_q latents, n_poly of them polysemantic (three
    features each) and the rest monosemantic.

    Args:
        settings: name -> (W_r, S, reps): the target matrix, the sparsity (a scalar or (n,) per feature, which sets
            the weights M_d) and the number of random partitions of that setting.
        generator: draws every partition and probe, in the order of ``settings``.

    Returns one row per partition: ``weights`` (the setting's name) and the comparison's columns.
    """
    n, rows = W_p.shape[1], []
    for name, (W_r, S, reps) in settings.items():
        gt = ground_truth.GroundTruth(W_p, W_r, ground_truth.Coefficients(n, S))
        for _ in range(reps):
            assign = mn.random_partition(n, n_q, n_poly, generator, n_mono=n - 3 * n_poly)
            row = mn.compare_constructions(gt, assign, n_q, sigma, generator=generator)
            rows.append({"weights": name, **row})
    return pd.DataFrame(rows)


def descent_endpoints(gt: ground_truth.GroundTruth, sigma, ratios: list[float], scales: list[float],
                      n_seeds: int, seed: int, steps: int, polish_iters: int, lr: float = 0.01) -> pd.DataFrame:
    """Batched full-batch Adam on L~ (:func:`~sdl_paper.theory.minima.descend_batch`) from random starts, each end
    point certified (:func:`~sdl_paper.theory.minima.certify_endpoint`).

    For each width ratio n_q / n: n_seeds starts per initial scale, W_E (n_q, n_p) then W_D (n_p, n_q) drawn as
    scale / 4 times standard normals from one generator seeded 1000 seed + int(10 ratio). Returns one row per run:
    ``n_q / n``, ``init scale``, the certificate's columns and ``outcome``: ``zero loss`` (polished L~ < 1e-10),
    ``spurious partial minimum`` (certified, with a polysemantic latent) or ``not certified``.
    """
    n_p, n = gt.W_p.shape
    runs = []
    for ratio in ratios:
        nq, g = int(round(ratio * n)), torch.Generator().manual_seed(1000 * seed + int(10 * ratio))
        init = torch.tensor(scales, dtype=torch.float64).repeat_interleave(n_seeds)
        s = init[:, None, None] / 4
        E0 = s * torch.randn(len(init), nq, n_p, generator=g, dtype=torch.float64)
        D0 = s * torch.randn(len(init), n_p, nq, generator=g, dtype=torch.float64)
        E, D, _ = mn.descend_batch(E0, D0, gt, sigma, steps=steps, lr=lr)
        for r in range(len(E)):
            row = mn.certify_endpoint(E[r], D[r], gt, sigma, polish_iters=polish_iters)
            runs.append({"n_q / n": ratio, "init scale": float(init[r]), **row})
    runs = pd.DataFrame(runs)
    spurious = runs["certified"] & (runs["polysemantic"] > 0)
    runs["outcome"] = np.select([runs["L~ (polished)"] < 1e-10, spurious],
                                ["zero loss", "spurious partial minimum"], "not certified")
    return runs


# --- absorption ---------------------------------------------------------------------------------------------------

def hierarchy(n_p: int, n_parents: int, n_children: int, M: float, seed: int) -> ab.Hierarchy:
    """n_parents parents, each with n_children children: n_parents (1 + n_children) directions in R^n_p with
    interference <= M (:func:`~sdl_paper.data.ground_truth.feature_matrix`, float64); the parents come first, then
    the children parent by parent."""
    W = ground_truth.feature_matrix(n_p, n_parents * (1 + n_children), M, seed=seed).double()
    first = n_parents + np.arange(n_parents)[:, None] * n_children
    return ab.Hierarchy(W, list(range(n_parents)), (first + np.arange(n_children)).tolist())


def firing_sets(W_E: Tensor, V: Tensor, thr: float) -> list[list[int]]:
    """The threshold pattern <w_E^i, v_d> > thr of W_E (n_q, n_p) on the atoms V (n_p, n_atoms) as a list of firing
    sets, one per latent (atom indices, increasing)."""
    return [row.nonzero().flatten().tolist() for row in ab.threshold_pattern(W_E, V, thr)]


def split_table(W_E: Tensor, V: Tensor, owner: Tensor, c: float) -> tuple[pd.DataFrame, dict]:
    """Theorem 3.8's construction (:func:`~sdl_paper.theory.absorption.split_child`) on each parent latent i of a
    faithful encoder W_E (n_parents, n_p) at threshold c, the atoms V (n_p, n_atoms) owned by parent ``owner``
    (n_atoms,).

    Returns (table, splits): one row per parent with its activations a_j on its atoms, the atom j* split off, the
    gap from the smallest a_j to the next, the new threshold c', whether the split pattern is realized, and whether
    the construction with another child is; ``splits`` maps each parent to its :class:`Split`.
    """
    rows, splits = [], {}
    for i in range(W_E.shape[0]):
        splits[i] = ab.split_child(W_E, V, c, i)
        members = (owner == i).nonzero().flatten().tolist()
        acts = (W_E[i] @ V[:, members]).numpy()
        other = [j for j in members if j != splits[i].child]
        rows.append({"parent": i, "activations a_j": acts.round(3).tolist(), "j*": splits[i].child,
                     "gap to the next child": np.sort(acts)[1] - acts.min(),
                     "new threshold c'": splits[i].c_new, "split realized": splits[i].realized,
                     "construction with another child": any(
                         ab.split_child(W_E, V, c, i, child=j).realized for j in other)})
    return pd.DataFrame(rows), splits
