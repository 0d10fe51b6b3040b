"""Parameters and presets of the two Linear Representation Bench chapters (``lrb`` and ``anchoring``); registered
with the others in :data:`sdl_paper.book.chapters.CHAPTERS`.

Default sizes are the paper's bench reduced to run on two CPU cores: n / n_p = 1.3 (the paper's 1000 / 768) and
M = 0.1 as in the paper, n_q = 4 n_p (the paper: about 21 n_p), S = 0.95 (the paper: 0.99; at n = 42 that would
leave 0.4 active features per sample against the paper's 10, and two thirds of the samples empty) and k = 6 (k
over the mean number of active features about 3, as the paper's smallest k). The ``paper`` preset uses the paper's
sizes (n = 1000, n_p = 768, n_q = 16,000) and needs a GPU.
"""
from __future__ import annotations

from .parameters import M_RULE, Chapter, Param, _interference, _list_rule, _reach_M, device_param

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
