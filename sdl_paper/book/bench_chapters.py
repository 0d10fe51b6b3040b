"""Parameters and presets of the benchmark chapters: the two Linear Representation Bench chapters (``lrb`` and
``anchoring``) and the SynthSAEBench-style transfer chapter (``synth_transfer``); registered with the others in
:data:`sdl_paper.book.chapters.CHAPTERS`.

Default sizes are the paper's bench reduced to run on two CPU cores: n / n_p = 1.3 (the paper's 1000 / 768) and
M = 0.1 as in the paper, n_q = 4 n_p (the paper: about 21 n_p), S = 0.95 (the paper: 0.99; at n = 42 that would
leave 0.4 active features per sample against the paper's 10, and two thirds of the samples empty) and k = 6 (k
over the mean number of active features about 3, as the paper's smallest k). The ``paper`` preset uses the paper's
sizes (n = 1000, n_p = 768, n_q = 16,000) and needs a GPU.
"""
from __future__ import annotations

from dataclasses import replace

from ..data.synthsaebench import SynthConfig
from .parameters import M_RULE, Chapter, Param, _interference, _list_rule, _reach_M, device_param

_TREE = replace(SynthConfig(), roots=1).forest_size()       # features of one tree of the benchmark's forest

_PAPER = {"n_p": 768, "n": 1000, "S": 0.99, "n_q": 16000, "k": 32, "steps": 20000, "batch_size": 4096}


def _bench_params() -> dict[str, Param]:
    return {
        "seed": Param(0, "RNG seed: the bench's features, the anchored subset, the first model seed", low=0),
        "n_seeds": Param(3, "model seeds per setting (the same seeds for every setting)", low=2, high=64),
        "n_p": Param(32, "width of each layer, n_p (the paper: 768)", low=4, high=8192),
        "n": Param(42, "number of ground-truth features, n (the paper: 1000)", low=4, high=20000),
        "S": Param(0.95, "sparsity S: probability that a feature is off (the paper: 0.99)", low=0.0, high=1.0,
                   high_open=True),
        "M": _interference(0.1, "maximum positive interference between features, M (the paper: 0.1)"),
        "n_q": Param(128, "latents of every dictionary, n_q (the paper: 16,000)", low=2, high=131072),
        "k": Param(6, "active latents per sample of the TopK family", low=1, high=4096),
        "steps": Param(1200, "training steps of every dictionary", low=20),
        "batch_size": Param(128, "samples per step and model", low=8),
        "tau": Param(0.95, "cosine threshold of M_GT (as in the paper)", low=0.0, high=1.0, low_open=True,
                     high_open=True),
        "device": device_param(),
    }


_K_RULE = (("k", "n_q"), "k must be <= n_q", lambda v: v["k"] <= v["n_q"])
_N_RULE = (("n", "n_p"), "the bench has superposition: need n > n_p", lambda v: v["n"] > v["n_p"])


def _curve_params() -> dict[str, Param]:
    return {
        "steps": Param(6000, "training steps of every dictionary", low=30),
        "lr_values": Param("0.0001,0.0003,0.001", "Adam learning rates, every row on the same seeds"),
        "points": Param(20, "log-spaced steps at which every curve is recorded", low=4, high=200),
    }


def lrb() -> Chapter:
    p = _bench_params() | _curve_params() | {
        "l1_values": Param("0.1,0.3,1,3", "L1 coefficients tried to match the ReLU SAE's L0 to k"),
        "l0_values": Param("0.03,0.1,0.3,1", "L0 coefficients tried to match the JumpReLU SAE's L0 to k"),
        "calib_steps": Param(1500, "training steps of the L0-matching runs", low=20),
        "long_steps": Param(18000, "steps of the long runs (rows converged at no rate), at the largest rate",
                            low=30),
    }
    presets = {"smoke": {"n_seeds": 2, "n_p": 16, "n": 21, "n_q": 64, "steps": 600, "batch_size": 128,
                         "lr_values": "0.001,0.003", "points": 8, "l1_values": "0.1,1",
                         "l0_values": "0.1,1", "calib_steps": 200, "long_steps": 1200},
               "book": {},
               "paper": _PAPER | {"long_steps": 60000}}
    rules = (M_RULE, _K_RULE, _N_RULE,
             (("long_steps", "steps"), "long_steps must exceed steps", lambda v: v["long_steps"] > v["steps"]),
             *(_list_rule((name,), f"{name} must be at least two numbers > 0", lambda x, v: x > 0)
               for name in ("l1_values", "l0_values", "lr_values")))
    return Chapter("lrb", "lrb.md", "The Linear Representation Bench", p, presets, rules, _reach_M)


def anchoring() -> Chapter:
    curve = {name: v for name, v in _curve_params().items() if name != "lr_values"}
    p = _bench_params() | curve | {
        "lr": Param(0.001, "Adam learning rate of every run (the bench chapter's largest: its rows converge)",
                    low=0.0, low_open=True),
        "practice": Param("standard", "training practice of every run: standard (SAELens's defaults) or theory",
                          choices=("standard", "theory")),
        "n_anchors": Param(8, "anchored features, a random subset (the paper's ablations: 100 of 1000)", low=1),
        "anchor_coef": Param(0.1, "anchoring coefficient lambda_anchor (the paper's superposition ablation: 0.1)",
                             low=0.0, low_open=True),
        "anchor_values": Param("16", "extra numbers of anchors (TopK SAE)"),
        "coef_values": Param("1.0", "extra lambda_anchor values (TopK SAE)"),
        "ratio_values": Param("1.04,1.82", "ratios n / n_p of the ablation besides the bench's n / n_p (the paper: "
                              "800..1400 / 768)"),
        "M_values": Param("0.5", "extra interference bounds M of the ablation (the paper: 0.05, 0.2, 0.5)"),
        "p_values": Param("0.1", "extra 1 - S values of the ablation (the paper: 0.005, 0.01, 0.1)"),
        "k_values": Param("12", "extra TopK k of the ablation (the paper: 32, 64, 128)"),
        "l1_values": Param("0.1,0.3,1,3", "L1 coefficients tried to match the ReLU SAE's L0 to k"),
        "l0_values": Param("0.03,0.1,0.3,1", "L0 coefficients tried to match the JumpReLU SAE's L0 to k"),
        "calib_steps": Param(1500, "training steps of the L0-matching runs", low=20),
    }
    presets = {"smoke": {"n_seeds": 2, "n_p": 16, "n": 21, "n_q": 64, "steps": 300, "points": 8, "n_anchors": 4,
                         "lr": 0.003, "anchor_values": "6", "coef_values": "1.0", "ratio_values": "1.82",
                         "M_values": "0.5", "p_values": "0.1", "k_values": "12",
                         "l1_values": "0.1,1", "l0_values": "0.1,1", "calib_steps": 100},
               "book": {},
               "paper": _PAPER | {"n_anchors": 100, "anchor_values": "25,200", "k_values": "64,128",
                                  "ratio_values": "1.04,1.17,1.43,1.56,1.69,1.82", "M_values": "0.05,0.2,0.5",
                                  "p_values": "0.005,0.1"}}
    rules = (M_RULE, _K_RULE, _N_RULE,
             (("n_anchors", "n", "n_q"), "n_anchors must be below n (some features must stay to evaluate) and at "
              "most n_q (each anchor takes a latent)", lambda v: v["n_anchors"] < v["n"] and v["n_anchors"] <= v["n_q"]),
             _list_rule(("anchor_values", "n", "n_q"), "anchor_values must be integers in [1, n) and at most n_q, "
                        "one or more", lambda x, v: 1 <= x < v["n"] and x <= v["n_q"], cast=int, least=1),
             _list_rule(("coef_values",), "coef_values must be numbers > 0, one or more", lambda x, v: x > 0,
                        least=1),
             _list_rule(("ratio_values",), "ratio_values must be numbers > 1 (superposition), one or more",
                        lambda x, v: x > 1, least=1),
             _list_rule(("M_values",), "M_values must be numbers in (0, 1), one or more", lambda x, v: 0 < x < 1,
                        least=1),
             _list_rule(("p_values",), "p_values must be numbers in (0, 1), one or more", lambda x, v: 0 < x < 1,
                        least=1),
             _list_rule(("k_values", "n_q"), "k_values must be integers in [1, n_q], one or more",
                        lambda x, v: 1 <= x <= v["n_q"], cast=int, least=1),
             *(_list_rule((name,), f"{name} must be at least two numbers > 0", lambda x, v: x > 0)
               for name in ("l1_values", "l0_values")))
    return Chapter("anchoring", "anchoring.md", "Feature anchoring and the ablations", p, presets, rules, _reach_M)


def synth_transfer() -> Chapter:
    p = {
        "seed": Param(0, "RNG seed: the world's directions and data, the anchored subset, the first model seed",
                      low=0),
        "n_seeds": Param(3, "model seeds per setting (the same seeds for every setting)", low=2, high=64),
        "n": Param(1024, "features of the world (the benchmark: 16384)", low=16, high=65536),
        "n_p": Param(128, "width of the activations (the benchmark: 768)", low=8, high=8192),
        "roots": Param(8, "trees of the forest (depth 3, 4 children per node; the benchmark: 128)", low=1),
        "n_q": Param(256, "latents of every dictionary (the benchmark: 4096, a quarter of n)", low=16,
                     high=131072),
        "k": Param(7, "active latents per sample of the TopK family (about the world's mean L0)", low=1,
                   high=1024),
        "steps": Param(1500, "training steps of every run", low=60),
        "batch_size": Param(256, "samples per step and model", low=16),
        "lr_values": Param("0.003", "Adam learning rates (every row is trained at each)"),
        "n_train": Param(65536, "samples of the fixed training set (0: fresh samples each step, as the "
                         "benchmark)", low=0),
        "l1_values": Param("1,1.5,2,3", "L1 coefficients tried to match the ReLU SAE's L0 to k"),
        "l0_values": Param("0.5,1,1.5,2", "L0 coefficients tried to match the JumpReLU SAE's L0 to k"),
        "calib_steps": Param(1500, "steps of each coefficient-matching run", low=20),
        "n_anchors": Param(32, "features anchored in the anchoring experiment (the others are evaluated)", low=1),
        "anchor_coef": Param(1.0, "anchoring coefficient, lambda_anchor", low=0.0, low_open=True),
        "tau": Param(0.95, "cosine threshold of M_GT (as in the paper)", low=0.0, high=1.0, low_open=True,
                     high_open=True),
        "points": Param(8, "curve points per run", low=6, high=60),
        "device": device_param(),
    }
    presets = {"smoke": {"n": 512, "n_p": 64, "roots": 4, "n_q": 128, "k": 6, "steps": 240, "n_train": 8192,
                         "l1_values": "0.3,3", "l0_values": "0.3,3", "calib_steps": 120, "n_anchors": 16,
                         "points": 6},
               "book": {},
               "paper": {"n": 16384, "n_p": 768, "roots": 128, "n_q": 4096, "k": 25, "steps": 48828,
                         "batch_size": 4096, "lr_values": "0.0003,0.001", "n_train": 0, "calib_steps": 5000,
                         "l1_values": "1,3,10", "l0_values": "0.1,1,10", "n_anchors": 512, "points": 20}}
    rules = (_list_rule(("lr_values",), "lr_values: learning rates in (0, 1)", lambda x, v: 0 < x < 1, least=1),
             *(_list_rule((name,), f"{name} must be at least two numbers > 0", lambda x, v: x > 0)
               for name in ("l1_values", "l0_values")),
             (("k", "n_q"), "k must be below n_q", lambda v: v["k"] < v["n_q"]),
             (("roots", "n"), f"the forest ({_TREE} features per tree: the benchmark's depth and branching) "
                              "must fit in n", lambda v: _TREE * v["roots"] <= v["n"]),
             (("n_anchors", "n", "n_q"), "n_anchors must be below n and n_q", lambda v: v["n_anchors"] < min(v["n"],
                                                                                                        v["n_q"])),
             (("n_train", "batch_size"), "n_train must be 0 (fresh samples) or at least batch_size",
              lambda v: v["n_train"] == 0 or v["n_train"] >= v["batch_size"]))
    return Chapter("synth_transfer", "synth_transfer.md", "Do the verdicts transfer?", p, presets, rules)
