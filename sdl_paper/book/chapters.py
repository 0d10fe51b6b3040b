"""The book's chapters as data: each chapter's notebook, parameters (default, type, allowed range, comment) and
presets. This module is the one place where a chapter's presets live; the parameter types and shared rules are in
:mod:`sdl_paper.book.parameters` (re-exported here).

A notebook's ``parameters`` cell repeats the defaults as plain literals (papermill needs them there; a test
checks that both agree), and its next cell calls :func:`check`, which validates every value. A preset reaches a
chapter as parameters, injected after that cell by whoever runs it (the runner, ``bookexec --preset``, nbval).
"""
from __future__ import annotations

from typing import Any

import torch

from . import bench_chapters
from .parameters import (  # noqa: F401 (re-exported: chapters.ParameterError, chapters.NOTEBOOKS, ...)
    ACTIVATION_RULE, M_RULE, NOTEBOOKS, PRESETS, Chapter, ChapterFailed, Param, ParameterError,
    _fires, _interference, _list_rule, _reach_M, _seed, device_param, firing_rule, number_list)


def _framework() -> Chapter:
    p = {
        "seed": Param(0, "RNG seed for the data, the initialisations and the batches", low=0),
        "n_p": Param(64, "width of each layer's representation, n_p", low=2, high=8192),
        "n": Param(96, "number of ground-truth features, n", low=2, high=20000),
        "S": Param(0.99, "sparsity S: probability that a feature is off", low=0.0, high=1.0, high_open=True),
        "M": _interference(0.1),
        "c_min": Param(0.0, "smallest non-zero coefficient, c_min", low=0.0),
        "beta": Param(1.0, "mean of the exponential part of a coefficient, beta", low=0.0, low_open=True),
        "n_q": Param(192, "number of latents of every dictionary, n_q", low=1, high=131072),
        "activation": Param("topk:2", "activation spec (relu, jumprelu:THETA, topk:K, batchtopk:K, A>B)"),
        "steps": Param(2000, "training steps for each instantiation", low=1),
        "batch_size": Param(256, "samples per training step", low=1),
        "lr": Param(0.003, "Adam learning rate", low=0.0, low_open=True, high=1.0),
        "n_mc": Param(200000, "Monte Carlo samples for the M_d and sparsity checks", low=1000),
        "device": device_param(),
    }
    presets = {
        "smoke": {"n_p": 24, "n": 32, "n_q": 64, "steps": 150, "n_mc": 20000},
        "book": {},
        "paper": {"n_p": 768, "n": 1000, "n_q": 16000, "activation": "topk:32", "steps": 5000, "batch_size": 4096,
                  "n_mc": 1000000},
    }
    rules = (M_RULE, ACTIVATION_RULE, firing_rule(lambda v: v["n_mc"], "n_mc", ("S", "n_mc")))
    return Chapter("framework", "framework.md", "The unified SDL framework", p, presets, rules, _reach_M)


def _loss_approximation() -> Chapter:
    p = {
        "seed": _seed(),
        "n_p": Param(64, "width of the representation, n_p", low=2, high=8192),
        "n": Param(96, "number of ground-truth features, n", low=2, high=20000),
        "M": _interference(0.1),
        "n_q": Param(192, "number of latents, n_q", low=1, high=131072),
        "activation": Param("topk:2", "activation of the trained and random dictionaries"),
        "train_S": Param(0.99, "sparsity of the data the dictionary is trained on", low=0.0, high=1.0,
                         high_open=True),
        "train_steps": Param(1500, "training steps of the trained dictionary", low=1),
        "log10_gap_min": Param(-4.0, "smallest 1 - S of the sweep, as log10", low=-8.0, high=-0.5),
        "log10_gap_max": Param(-0.5, "largest 1 - S of the sweep, as log10", low=-8.0, high=-0.1),
        "n_S": Param(10, "number of sparsity levels in the sweep", low=3, high=100),
        "n_samples": Param(20000, "conditional Monte Carlo samples per term and sparsity level", low=500),
        "n_plain": Param(100000, "unconditioned Monte Carlo samples per level of the identity check", low=1000),
        "theta": Param(0.3, "JumpReLU threshold for the threshold-effect check", low=0.0, low_open=True),
        "ce_n": Param(2, "features of the JumpReLU counterexample (identity dictionaries)", low=1, high=64),
        "ce_theta": Param(0.9, "JumpReLU threshold of the counterexample", low=0.0, high=1.0, high_open=True),
        "ce_low": Param(0.5, "smallest magnitude of the counterexample's uniform law", low=0.0),
        "ce_high": Param(1.5, "largest magnitude of the counterexample's uniform law", low=0.0, low_open=True),
        "ce_samples": Param(40000, "conditional Monte Carlo samples per term and p (counterexample)", low=500),
    }
    presets = {"smoke": {"n_p": 24, "n": 32, "n_q": 64, "train_steps": 100, "n_samples": 4000, "n_S": 6,
                         "n_plain": 40000, "ce_samples": 10000},
               "book": {},
               "paper": {"n_p": 768, "n": 1000, "n_q": 16000, "activation": "topk:32", "train_steps": 5000,
                         "log10_gap_min": -5.0, "n_samples": 50000}}
    rules = ((("log10_gap_min", "log10_gap_max"), "the sweep needs log10_gap_min < log10_gap_max",
              lambda v: v["log10_gap_min"] < v["log10_gap_max"]),
             (("ce_low", "ce_theta", "ce_high"), "the counterexample needs ce_low < ce_theta < 1 <= ce_high",
              lambda v: v["ce_low"] < v["ce_theta"] and v["ce_high"] >= 1),
             ACTIVATION_RULE)
    return Chapter("loss_approximation", "loss_approximation.md", "Loss approximation (Thm 3.1)", p, presets,
                   rules, _reach_M)


def _biconvexity() -> Chapter:
    p = {
        "seed": _seed(),
        "n_p": Param(6, "width of the representation, n_p", low=2, high=64),
        "n": Param(8, "number of features, n (at most 16: the exact L_SDL sums over 2^n inputs)", low=2,
                   high=16),
        "n_q": Param(5, "number of latents, n_q (fewer than n keeps the loss positive)", low=2, high=64),
        "M": _interference(0.3),
        "n_lines": Param(200, "random lines per convexity check", low=10),
        "n_pairs": Param(2000, "random encoder pairs in the region-convexity search", low=10),
        "iters": Param(40, "alternating-minimisation iterations", low=2),
    }
    presets = {"smoke": {"n_lines": 40, "n_pairs": 300, "iters": 20}, "book": {},
               "paper": {"n_lines": 2000, "n_pairs": 20000, "iters": 400}}
    return Chapter("biconvexity", "biconvexity.md", "Piecewise biconvexity (Thm 3.2)", p, presets,
                   preflight=_reach_M)


def _global_minima() -> Chapter:
    p = {
        "seed": _seed(),
        "n_p": Param(32, "width of the representation, n_p", low=2, high=4096),
        "n": Param(48, "number of features, n", low=2, high=4096),
        "M_min": Param(0.05, "smallest interference bound of the sweep", low=0.0, high=1.0, high_open=True),
        "M_max": Param(0.4, "largest interference bound of the sweep", low=0.0, high=1.0, high_open=True),
        "n_M": Param(6, "number of interference bounds in the sweep", low=2, high=50),
        "n_train": Param(24, "features of the gradient-training experiment", low=2, high=512),
        "n_p_train": Param(16, "width of the gradient-training experiment", low=2, high=512),
        "q_ratio": Param(2.0, "n_q / n in the gradient-training experiment", low=1.0),
        "train_steps": Param(1500, "full-batch Adam steps on L~", low=10),
        "n_seeds": Param(6, "initialisations in the gradient-training experiment", low=1),
    }
    presets = {"smoke": {"n_p": 16, "n": 24, "n_M": 3, "train_steps": 300, "n_seeds": 2}, "book": {},
               "paper": {"n_p": 768, "n": 1000, "n_M": 8, "n_train": 96, "n_p_train": 64, "n_seeds": 16}}
    rules = ((("M_min", "M_max"), "the sweep needs M_min < M_max", lambda v: v["M_min"] < v["M_max"]),)

    def reach(v):
        _reach_M({"n_p": v["n_p"], "n": v["n"], "M": v["M_min"], "seed": v["seed"]})
    return Chapter("global_minima", "global_minima.md", "Global minima and non-identifiability (Thm 3.3, 3.4)",
                   p, presets, rules, reach)


def _spurious_minima() -> Chapter:
    p = {
        "seed": _seed(),
        "n_p": Param(16, "width of the representation, n_p", low=2, high=512),
        "n": Param(12, "number of features, n", low=4, high=512),
        "n_q": Param(14, "number of latents for the constructions, n_q", low=2, high=1024),
        "n_poly": Param(3, "polysemantic latents in each random partition", low=1),
        "M": _interference(0.2),
        "S_min": Param(0.98, "smallest per-feature sparsity (M_d differ between features)", low=0.0, high=1.0,
                       high_open=True),
        "S_max": Param(0.995, "largest per-feature sparsity", low=0.0, high=1.0, high_open=True),
        "n_partitions": Param(40, "random partitions checked", low=1),
        "gd_steps": Param(1500, "full-batch Adam steps from each random initialisation", low=10),
        "gd_seeds": Param(6, "initialisations per (n_q / n, init scale) cell", low=1),
        "polish_iters": Param(50, "exact alternating block steps to polish each gradient-descent endpoint", low=1),
    }
    presets = {"smoke": {"n_partitions": 8, "gd_steps": 300, "gd_seeds": 2, "polish_iters": 20}, "book": {},
               "paper": {"n_p": 64, "n": 48, "n_q": 56, "n_poly": 8, "n_partitions": 200, "gd_seeds": 20}}
    rules = ((("n_poly", "n", "n_q"), "need 3 * n_poly <= n and n - 2 * n_poly <= n_q (groups of three)",
              lambda v: 3 * v["n_poly"] <= v["n"] and v["n"] - 2 * v["n_poly"] <= v["n_q"]),
             (("S_min", "S_max"), "need S_min <= S_max", lambda v: v["S_min"] <= v["S_max"]))
    return Chapter("spurious_minima", "spurious_minima.md", "Spurious partial minima and dead neurons "
                   "(Example 3.5, Thm 3.6)", p, presets, rules, _reach_M)


def _absorption_theory() -> Chapter:
    p = {
        "seed": _seed(),
        "n_p": Param(32, "width of the representation, n_p", low=2, high=4096),
        "n_parents": Param(3, "number of parent concepts", low=1, high=64),
        "n_children": Param(3, "children per parent", low=2, high=64),
        "M": _interference(0.1, "maximum interference between the base directions"),
        "c": Param(0.45, "global threshold of the JumpReLU (threshold form of the theorem)", low=0.0, high=1.0,
                   low_open=True, high_open=True),
        "n_instances": Param(100, "random instances for the caveat statistics", low=1),
    }
    presets = {"smoke": {"n_instances": 20}, "book": {}, "paper": {"n_p": 256, "n_parents": 16,
                                                                  "n_children": 8, "n_instances": 500}}

    def reach(v):
        _reach_M({"n_p": v["n_p"], "n": v["n_parents"] * (1 + v["n_children"]), "M": v["M"], "seed": v["seed"]})
        _faithful_at_c(v)
    return Chapter("absorption_theory", "absorption_theory.md", "Absorption from hierarchy (Def 3.2, Thm 3.8)",
                   p, presets, preflight=reach)


def _faithful_at_c(v) -> None:
    """The theorem starts from the faithful encoder (one latent per parent, firing on exactly its own atoms) at
    the threshold c: refuse a c outside the interval where this hierarchy realizes that pattern."""
    from ..studies import theory_pages
    from ..theory import absorption as ab
    h = theory_pages.hierarchy(v["n_p"], v["n_parents"], v["n_children"], v["M"], v["seed"])
    z = ab.faithful_encoder(h) @ h.atoms()                       # (n_parents, n_atoms)
    own = torch.nn.functional.one_hot(h.owner(), v["n_parents"]).T.bool()
    lo, hi = float(z[~own].max()) if (~own).any() else float("-inf"), float(z[own].min())
    if not lo <= v["c"] < hi:
        where = f"c in [{lo:.3g}, {hi:.3g})" if lo < hi else "none: lower M or use fewer children"
        raise ParameterError(f"c={v['c']}: the faithful encoder of this hierarchy (M={v['M']}, n_parents="
                             f"{v['n_parents']}, n_children={v['n_children']}, seed={v['seed']}) fires on "
                             f"exactly its own atoms only for {where}")


_K_RULE = (("k", "n_q"), "k must be <= n_q", lambda v: v["k"] <= v["n_q"])


def _experiment_common(n_p: int) -> dict[str, Param]:
    p = {"seed": _seed(),
         "n_seeds": Param(3, "seeds per setting (trained together as one batched model)", low=2, high=64),
         "n_p": Param(n_p, "width of the representation, n_p", low=4, high=4096),
         "M": _interference(0.1),
         "steps": Param(1500, "training steps of every run", low=50),
         "batch_size": Param(256, "samples per step and model", low=16),
         "lr": Param(0.003, "Adam learning rate", low=0.0, low_open=True, high=1.0),
         "k": Param(2, "active latents per sample (TopK, BatchTopK, Matryoshka)", low=1, high=1024),
         "device": device_param()}
    return p


def _absorption_experiments() -> Chapter:
    p = _experiment_common(32) | {
        "steps": Param(600, "training steps of every run", low=50),
        "k": Param(2, "active latents per sample of the TopK-family comparison", low=1, high=1024),
        "n_parents": Param(4, "parents of the tree world", low=1, high=64),
        "n_children": Param(4, "children per parent in the tree world", low=2, high=32),
        "n_pairs": Param(8, "one-child hierarchies (parent, child) of the pair world", low=1, high=64),
        "n_free": Param(8, "unrelated features of both worlds", low=0, high=4096),
        "p_parent": Param(0.1, "probability that a parent (and each free feature) is active", low=0.0,
                          low_open=True, high=0.5),
        "rho_values": Param("0.2,0.5,0.8", "co-occurrence P(child | parent) values; the largest is the default"),
        "child_decay": Param(0.7, "child j is chosen with probability proportional to child_decay^j", low=0.0,
                             low_open=True, high=1.0, high_open=True),
        "c_min": Param(1.0, "least magnitude of an active feature", low=0.0),
        "beta": Param(0.1, "mean of the exponential part of a magnitude", low=0.0, low_open=True),
        "width": Param(2.0, "latents per ground-truth feature, n_q / n", low=1.0, high=64.0),
        "bias": Param(True, "encoder and decoder biases"),
        "l1_values": Param("0.03,0.3,1.0", "L1 coefficients of the ReLU SAE's sparsity sweep"),
        "l1": Param(1.0, "L1 coefficient of the ReLU SAE in the co-occurrence sweep and comparisons", low=0.0),
        "k_values": Param("1,2,4", "k values of the TopK sparsity sweep"),
        "early_steps": Param("10,25,50,100,200", "snapshot steps (a_j before absorption sets in)"),
    }
    presets = {"smoke": {"n_seeds": 2, "steps": 200, "lr": 0.01, "rho_values": "0.2,0.8",
                         "l1_values": "0.03,1.0", "k_values": "1,4", "early_steps": "10,25,50"},
               "book": {},
               "paper": {"n_seeds": 8, "n_p": 256, "n_parents": 16, "n_children": 8, "n_pairs": 32,
                         "n_free": 256, "steps": 20000, "batch_size": 1024, "k_values": "1,2,4,8",
                         "early_steps": "100,250,500,1000,2000"}}

    def n_min(v):              # the smaller world's n_q = round(width * n)
        return round(v["width"] * (min(v["n_parents"] * (1 + v["n_children"]), 2 * v["n_pairs"]) + v["n_free"]))
    rules = (_list_rule(("rho_values",), "rho_values must be at least two comma-separated numbers in (0, 1]",
                        lambda x, v: 0 < x <= 1),
             _list_rule(("l1_values",), "l1_values must be at least two numbers >= 0", lambda x, v: x >= 0),
             _list_rule(("k_values", "k", "width", "n_parents", "n_children", "n_pairs", "n_free"),
                        "k_values must be at least two integers in [1, n_q] (n_q = width * n)",
                        lambda x, v: 1 <= x <= n_min(v), cast=int),
             (("k", "width", "n_parents", "n_children", "n_pairs", "n_free"), "k must be <= n_q = width * n",
              lambda v: v["k"] <= n_min(v)),
             _list_rule(("early_steps", "steps"), "early_steps must be at least two integers in [1, steps)",
                        lambda x, v: 1 <= x < v["steps"], cast=int))

    def reach(v):
        for n in (v["n_parents"] * (1 + v["n_children"]) + v["n_free"], 2 * v["n_pairs"] + v["n_free"]):
            _reach_M({"n_p": v["n_p"], "n": n, "M": v["M"], "seed": v["seed"]})
    return Chapter("absorption_experiments", "absorption_experiments.md", "Experiment: feature absorption", p,
                   presets, rules, reach)


def _dead_neurons() -> Chapter:
    p = _experiment_common(32) | {
        "n_seeds": Param(8, "seeds per setting (trained together as one batched model)", low=2, high=64),
        "steps": Param(1000, "training steps of every run", low=50),
        "n": Param(48, "number of ground-truth features, n", low=2, high=20000),
        "S": Param(0.99, "base sparsity S", low=0.0, high=1.0, high_open=True),
        "width_ratios": Param("1,2,4,8", "n_q / n values of the width sweep"),
        "S_values": Param("0.9,0.99,0.998", "sparsities of the sparsity sweep"),
        "lr_values": Param("0.0003,0.001,0.003,0.01,0.03", "learning rates of the learning-rate sweep"),
        "init_values": Param("0.1,1,10", "initialisation scales of the init sweep"),
        "base_ratio": Param(4.0, "n_q / n of the base setting", low=1.0, high=64.0),
        "windows": Param("10,100,1000", "dead-latent windows (steps) compared on the same runs"),
        "relu_ratios": Param("1,4", "n_q / n values of the ReLU control (no TopK floor)"),
        "l1": Param(0.3, "L1 coefficient of the ReLU control", low=0.0, low_open=True),
    }
    presets = {"smoke": {"n_seeds": 2, "steps": 150, "width_ratios": "1,4", "S_values": "0.9,0.99",
                         "lr_values": "0.001,0.03", "init_values": "0.1,10", "windows": "10,100"},
               "book": {},
               "paper": {"n_seeds": 8, "n_p": 768, "n": 1000, "steps": 20000, "batch_size": 1024, "k": 32,
                         "windows": "100,1000,10000"}}

    rules = (_list_rule(("width_ratios",), "width_ratios: at least two numbers in [1, 64)", lambda x, v: 1 <= x < 64),
             _list_rule(("relu_ratios",), "relu_ratios: at least two numbers in [1, 64)", lambda x, v: 1 <= x < 64),
             _list_rule(("S_values",), "S_values: at least two sparsities in [0, 1)", lambda x, v: 0 <= x < 1),
             _list_rule(("lr_values",), "lr_values: at least two learning rates in (0, 1)", lambda x, v: 0 < x < 1),
             _list_rule(("init_values",), "init_values: at least two scales in (0, 1000)",
                        lambda x, v: 0 < x < 1000),
             _list_rule(("windows", "steps"), "windows: at least two integers in [1, steps]",
                        lambda x, v: 1 <= x <= v["steps"], cast=int),
             (("k", "n"), "k must be <= n", lambda v: v["k"] <= v["n"]),
             M_RULE,
             firing_rule(lambda v: v["steps"] * v["batch_size"], "steps * batch_size", ("S", "steps", "batch_size")),
             _list_rule(("S_values", "steps", "batch_size"), "features must fire at every S of S_values: need "
                        "(1 - S) * steps * batch_size >= 50", lambda x, v: _fires(x, v["steps"] * v["batch_size"])))
    return Chapter("dead_neurons", "dead_neurons.md", "Experiment: dead neurons", p, presets, rules, _reach_M)


def _resampling() -> Chapter:
    p = _experiment_common(32) | {
        "steps": Param(1200, "training steps of every run", low=50),
        "n": Param(48, "number of ground-truth features, n", low=2, high=20000),
        "S": Param(0.998, "sparsity S", low=0.0, high=1.0, high_open=True),
        # near-constant magnitudes (c_min + Exp(beta)): without a heavy tail ReLU latents die early, so the
        # ReLU setting has dead latents at the first resampling step (with c_min 0, beta 1 almost none)
        "c_min": Param(1.0, "least magnitude of an active feature, c_min", low=0.0),
        "beta": Param(0.1, "mean of the exponential part of a magnitude, beta", low=0.0, low_open=True),
        "n_q": Param(96, "latents, n_q (both settings)", low=2, high=131072),
        "init_scale": Param(1.0, "initialisation scale", low=0.0, low_open=True, high=1000.0),
        "dead_window": Param(100, "a latent silent for this many steps is dead (and resampled)", low=1),
        "n_seeds": Param(8, "seeds (the same for every remedy)", low=2, high=64),
        "track_every": Param(50, "steps between ground-truth metric records", low=1),
        "l1": Param(1.0, "L1 coefficient of the ReLU SAE", low=0.0, low_open=True),
        "relu_lr": Param(0.015, "Adam learning rate of the ReLU SAE", low=0.0, low_open=True, high=1.0),
        "n_events": Param(4, "resampling events of the periodic schedule (at 1/6, 2/6, ... of training)",
                          low=2, high=5),
        "variant_scale": Param(1.0, "encoder scale of the TopK resampling variant (recipe: 0.2)", low=0.0,
                               low_open=True, high=100.0),
    }
    presets = {"smoke": {"n_seeds": 2, "steps": 240, "dead_window": 20, "track_every": 20},
               "book": {},
               "paper": {"n_seeds": 8, "n_p": 768, "n": 1000, "n_q": 16000, "steps": 30000, "batch_size": 4096,
                         "k": 32, "dead_window": 2000, "track_every": 1000}}
    rules = ((("dead_window", "steps"), "dead_window must be below steps / 6 (the resampling step)",
              lambda v: v["dead_window"] < v["steps"] // 6),
             (("n_events", "dead_window", "steps"), "the last resampling event (n_events / 6 of steps) must "
              "leave at least dead_window steps: need (6 - n_events) * (steps // 6) > dead_window",
              lambda v: (6 - v["n_events"]) * (v["steps"] // 6) > v["dead_window"]),
             _K_RULE, M_RULE,
             firing_rule(lambda v: v["steps"] * v["batch_size"], "steps * batch_size", ("S", "steps", "batch_size")))
    return Chapter("resampling", "resampling.md", "Experiment: neuron resampling", p, presets, rules, _reach_M)


def _real_activations() -> Chapter:
    p = {
        "seed": Param(0, "RNG seed: the network, its data split, the anchored classes, the first dictionary seed",
                      low=0),
        "n_seeds": Param(8, "dictionary seeds per setting (the same for every setting)", low=2, high=64),
        "hidden": Param(128, "hidden width of the digits MLP (n_p and n_r of every dictionary)", low=16,
                        high=4096),
        "net_steps": Param(300, "full-batch Adam steps training the MLP", low=50),
        "n_q": Param(128, "latents of every dictionary, n_q", low=10, high=131072),
        "steps": Param(700, "training steps of every dictionary", low=50),
        "batch_size": Param(256, "samples per step and model", low=16),
        "lr": Param(0.003, "Adam learning rate of the dictionaries", low=0.0, low_open=True, high=1.0),
        "k": Param(2, "active latents per sample (TopK, BatchTopK)", low=1, high=1024),
        "l1_values": Param("0.1,0.3", "L1 coefficients of the ReLU SAEs (the first also trains with anchors)"),
        "tau": Param(0.95, "cosine threshold of M_GT (as in the paper)", low=0.0, high=1.0, low_open=True,
                     high_open=True),
        "n_anchors": Param(5, "class-mean directions used as anchors (the others are evaluated)", low=1, high=9),
        "anchor_coef": Param(1.0, "anchoring coefficient, lambda_anchor (as in the paper's Table 2)", low=0.0,
                             low_open=True),
        "res_l1": Param(0.3, "L1 coefficient of the ReLU SAE with biases in the resampling experiment", low=0.0,
                        low_open=True),
        "res_lr": Param(0.03, "Adam learning rate of the resampling experiment", low=0.0, low_open=True,
                        high=1.0),
        "res_steps": Param(1500, "training steps of the resampling experiment (resampling at 1/6)", low=60),
        "dead_window": Param(100, "a latent silent for this many steps is dead (and resampled)", low=1),
        "device": device_param(),
    }
    presets = {"smoke": {"n_seeds": 2, "net_steps": 150, "steps": 400, "res_steps": 600, "dead_window": 50},
               "book": {},
               "paper": {"n_seeds": 8, "hidden": 512, "net_steps": 1000, "n_q": 2048, "steps": 20000,
                         "batch_size": 1024, "k": 8, "res_steps": 30000, "dead_window": 1000}}
    rules = ((("k", "n_q"), "k must be <= n_q", lambda v: v["k"] <= v["n_q"]),
             _list_rule(("l1_values",), "l1_values must be at least two numbers > 0", lambda x, v: x > 0),
             (("dead_window", "res_steps"), "dead_window must be below res_steps / 6 (the resampling step)",
              lambda v: v["dead_window"] < v["res_steps"] // 6),
             (("n_anchors", "n_q"), "n_anchors must be below n_q", lambda v: v["n_anchors"] < v["n_q"]))
    return Chapter("real_activations", "real_activations.md", "Experiment: dictionaries on a trained network", p,
                   presets, rules)


def _user_guide() -> Chapter:
    p = {
        "seed": _seed(),
        "n_q": Param(128, "latents of every dictionary", low=16, high=8192),
        "k": Param(8, "active latents of the TopK SAE", low=1, high=64),
        "steps": Param(1500, "training steps of each dictionary", low=50),
        "batch_size": Param(256, "samples per step", low=8),
        "lr": Param(0.003, "Adam learning rate", low=0.0, high=1.0, low_open=True),
        "warm_up": Param(100, "learning-rate warm-up steps (SAELens's lr_warm_up_steps)", low=0),
        "calib_steps": Param(200, "steps of each run of the L1 coefficient search", low=20),
    }
    presets = {"smoke": {"n_q": 64, "steps": 200, "warm_up": 20, "calib_steps": 60}, "book": {},
               "paper": {"n_q": 1024, "steps": 20000, "warm_up": 1000, "calib_steps": 2000}}
    rules = ((("k", "n_q"), "k must be below n_q", lambda v: v["k"] < v["n_q"]),
             (("warm_up", "steps"), "warm_up must be below steps", lambda v: v["warm_up"] < v["steps"]))
    return Chapter("user_guide", "user_guide.md", "User guide: a dictionary on your own activations", p, presets,
                   rules)


CHAPTERS: dict[str, Chapter] = {c.name: c for c in [_framework(), _loss_approximation(), _biconvexity(),
                                                    _global_minima(), _spurious_minima(), _absorption_theory(),
                                                    _absorption_experiments(), _dead_neurons(), _resampling(),
                                                    _real_activations(), bench_chapters.lrb(),
                                                    bench_chapters.anchoring(), bench_chapters.synth_transfer(),
                                                    _user_guide()]}


def get(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ParameterError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
    return CHAPTERS[name]


def check(name: str, namespace: dict[str, Any]) -> None:
    """Validate a notebook's parameters, taken from ``namespace`` (its globals), in its second cell: raises
    :class:`ParameterError` naming the value and what is allowed; changes nothing."""
    chapter = get(name)
    values = {k: namespace[k] for k in chapter.params if k in namespace}
    missing = sorted(set(chapter.params) - set(values))
    if missing:
        raise ParameterError(f"chapter {name!r}: the parameters cell does not define {', '.join(missing)}")
    chapter.resolve(values)
