"""The book's chapters as data: each chapter's notebook, parameters (default, type, allowed range, comment) and
presets. This module is the one place where a chapter's presets live.

A notebook's ``parameters`` cell repeats the defaults as plain literals (papermill needs them there; a test
checks that both agree), and its next cell calls :func:`resolve`, which validates every value and, in book
builds, applies the preset named by the environment variable ``SDL_PRESET``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PRESETS = ("smoke", "book", "paper")
PRESET_ENV = "SDL_PRESET"


class ParameterError(ValueError):
    """A chapter, parameter or value that is not allowed; the message names it and what is allowed."""


class ChapterFailed(RuntimeError):
    """A chapter's execution failed (the message names the cell); nothing was written."""


@dataclass(frozen=True)
class Param:
    """One chapter parameter. Its type is the type of ``default`` (int, float, bool or str)."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def allowed(self) -> str:
        """Human-readable allowed values, e.g. ``float in [0, 1)``."""
        if self.choices is not None:
            return f"one of {', '.join(map(repr, self.choices))}"
        if self.low is None and self.high is None:
            return self.type.__name__
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{self.type.__name__} in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"

    def parse(self, name: str, text: str) -> Any:
        """Convert command-line text to this parameter's type, then :meth:`check` it."""
        try:
            if self.type is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError
                value = text.lower() == "true"
            else:
                value = self.type(text)
        except ValueError:
            raise ParameterError(f"parameter {name!r}: {text!r} is not a valid {self.type.__name__}; "
                                 f"allowed: {self.allowed()}") from None
        return self.check(name, value)

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` (ints widened to float where the default is a float) or raise :class:`ParameterError`."""
        t = self.type
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not t:
            raise ParameterError(f"parameter {name!r}: expected {t.__name__}, got {type(value).__name__} "
                                 f"{value!r}; allowed: {self.allowed()}")
        if t is float and not math.isfinite(value):
            raise ParameterError(f"parameter {name!r}: {value!r} is not finite; allowed: {self.allowed()}")
        bad = (self.choices is not None and value not in self.choices) or (
            self.low is not None and (value <= self.low if self.low_open else value < self.low)) or (
            self.high is not None and (value >= self.high if self.high_open else value > self.high))
        if bad:
            raise ParameterError(f"parameter {name!r}={value!r} is out of range; allowed: {self.allowed()}")
        return value


@dataclass(frozen=True)
class Chapter:
    """A chapter: its notebook (relative to ``notebooks/``), parameters, presets and cross-parameter rules."""

    name: str
    notebook: str
    title: str
    params: dict[str, Param]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: tuple[tuple[tuple[str, ...], str, Callable[[dict], bool]], ...] = ()  # (names, message, predicate)
    preflight: Callable[[dict], None] | None = None  # costlier checks run once before execution (e.g. reach M)

    @property
    def path(self) -> Path:
        return NOTEBOOKS / self.notebook

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}

    def resolve(self, overrides: dict[str, Any] | None = None, preset: str = "book") -> dict[str, Any]:
        """Defaults, then the preset, then ``overrides``; every value and rule checked. Raises ParameterError."""
        if preset not in PRESETS:
            raise ParameterError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
        values = self.defaults() | self.presets.get(preset, {}) | dict(overrides or {})
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ParameterError(f"chapter {self.name!r} has no parameter {unknown[0]!r}; "
                                 f"its parameters: {', '.join(self.params)}")
        values = {k: self.params[k].check(k, v) for k, v in values.items()}
        for names, message, ok in self.rules:
            try:
                passed, detail = ok(values), ""
            except ValueError as e:
                passed, detail = False, f": {e}"
            if not passed:
                got = ", ".join(f"{k}={values[k]!r}" for k in names)
                raise ParameterError(f"chapter {self.name!r}: {message} (got {got}){detail}")
        return values


def _activation_ok(spec: str, n_q: int) -> bool:
    """A valid activation spec whose every k (TopK, BatchTopK) is at most n_q."""
    from .activations import make_activation
    sigma = make_activation(spec)  # a ValueError here explains what is wrong with the spec
    return all(getattr(m, "k", 0) <= n_q for m in sigma.modules())


def _reach_M(v: dict) -> None:
    """Generate the chapter's feature matrix once: an unreachable interference bound M fails here."""
    from .data import InterferenceUnreachable, feature_matrix
    try:
        feature_matrix(v["n_p"], v["n"], v["M"], seed=v["seed"])
    except InterferenceUnreachable as e:
        raise ParameterError(f"parameter 'M'={v['M']!r} cannot be reached: {e}") from None


def _seed() -> Param:
    return Param(0, "RNG seed", low=0)


def _interference(default: float, help: str = "maximum interference between features, M") -> Param:
    """The interference bound M, in (-1, 1) (its lower limit -1/(n-1) is checked by a rule or the preflight)."""
    return Param(default, help, low=-1.0, high=1.0, low_open=True, high_open=True)


ACTIVATION_RULE = (("activation", "n_q"), "the activation spec must be valid and its k <= n_q",
                   lambda v: _activation_ok(v["activation"], v["n_q"]))
M_RULE = (("M", "n"), "M must be >= -1/(n-1): no n unit vectors are more spread out",
          lambda v: v["M"] >= -1 / (v["n"] - 1))


def number_list(text: str, cast: type = float) -> list:
    """The values of a comma-separated sweep parameter such as ``"0.2,0.6,1.0"``."""
    return [cast(t) for t in text.split(",")]


def _list_rule(names: tuple[str, ...], message: str, ok: Callable[[float, dict], bool], cast: type = float):
    """A rule: ``names[0]`` holds at least two comma-separated values, each with ``ok(value, params)``."""
    def check(v):
        xs = number_list(v[names[0]], cast)
        return len(xs) >= 2 and all(ok(x, v) for x in xs)
    return names, message, check


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
        "device": Param("auto", "where to train", choices=("auto", "cpu", "cuda")),
    }
    presets = {
        "smoke": {"n_p": 24, "n": 32, "n_q": 64, "steps": 150, "n_mc": 20000},
        "book": {},
        "paper": {"n_p": 768, "n": 1000, "n_q": 16000, "activation": "topk:32", "steps": 5000, "batch_size": 4096,
                  "n_mc": 1000000},
    }
    rules = (M_RULE, ACTIVATION_RULE)
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
        "theta": Param(0.3, "JumpReLU threshold for the threshold-effect check", low=0.0, low_open=True),
    }
    presets = {"smoke": {"n_p": 24, "n": 32, "n_q": 64, "train_steps": 100, "n_samples": 4000, "n_S": 6},
               "book": {},
               "paper": {"n_p": 768, "n": 1000, "n_q": 16000, "activation": "topk:32", "train_steps": 5000,
                         "log10_gap_min": -5.0, "n_samples": 50000}}
    rules = ((("log10_gap_min", "log10_gap_max"), "the sweep needs log10_gap_min < log10_gap_max",
              lambda v: v["log10_gap_min"] < v["log10_gap_max"]),
             ACTIVATION_RULE)
    return Chapter("loss_approximation", "loss_approximation.md", "Loss approximation (Thm 3.1)", p, presets,
                   rules, _reach_M)


def _biconvexity() -> Chapter:
    p = {
        "seed": _seed(),
        "n_p": Param(6, "width of the representation, n_p", low=2, high=64),
        "n": Param(8, "number of features, n", low=2, high=64),
        "n_q": Param(5, "number of latents, n_q (fewer than n keeps the loss positive)", low=1, high=64),
        "M": _interference(0.3),
        "n_lines": Param(200, "random lines per convexity check", low=10),
        "n_pairs": Param(2000, "random encoder pairs in the TopK region search", low=10),
        "iters": Param(150, "alternating-minimisation iterations", low=2),
    }
    presets = {"smoke": {"n_lines": 40, "n_pairs": 300, "iters": 30}, "book": {},
               "paper": {"n_lines": 2000, "n_pairs": 20000, "iters": 1000}}
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
    }
    presets = {"smoke": {"n_partitions": 8, "gd_steps": 300, "gd_seeds": 2}, "book": {},
               "paper": {"n_p": 64, "n": 48, "n_q": 56, "n_poly": 8, "n_partitions": 200, "gd_seeds": 20}}
    rules = ((("n_poly", "n", "n_q"), "need 2 * n_poly <= n and n - n_poly <= n_q",
              lambda v: 2 * v["n_poly"] <= v["n"] and v["n"] - v["n_poly"] <= v["n_q"]),
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
    return Chapter("absorption_theory", "absorption_theory.md", "Absorption from hierarchy (Def 3.2, Thm 3.8)",
                   p, presets, preflight=reach)


_K_RULE = (("k", "n_q"), "k must be <= n_q", lambda v: v["k"] <= v["n_q"])


def _experiment_common(n_p: int) -> dict[str, Param]:
    p = {"seed": _seed(),
         "n_seeds": Param(3, "seeds per setting (trained together as one batched model)", low=2, high=64),
         "n_p": Param(n_p, "width of the representation, n_p", low=4, high=4096),
         "M": _interference(0.1),
         "steps": Param(1500, "training steps of every run", low=50),
         "batch_size": Param(256, "samples per step and model", low=16),
         "lr": Param(0.003, "Adam learning rate", low=0.0, low_open=True, high=1.0),
         "k": Param(2, "active latents per sample (TopK, BatchTopK, Matryoshka)", low=1, high=1024)}
    return p


def _absorption_experiments() -> Chapter:
    p = _experiment_common(32) | {
        "n_parents": Param(4, "parent concepts", low=1, high=64),
        "n_children": Param(4, "children per parent", low=2, high=32),
        "n_free": Param(16, "unrelated features", low=0, high=4096),
        "p_parent": Param(0.05, "probability that a parent is active", low=0.0, low_open=True, high=0.5),
        "rho_values": Param("0.2,0.6,1.0", "co-occurrence P(a child | its parent) values of the sweep"),
        "child_decay": Param(0.7, "child j is chosen with probability proportional to child_decay^j", low=0.0,
                             low_open=True, high=1.0),
        "n_q": Param(48, "latents of every SAE, n_q", low=2, high=65536),
        "l1": Param(0.003, "L1 coefficient of the ReLU SAE", low=0.0),
    }
    presets = {"smoke": {"n_seeds": 2, "steps": 150, "rho_values": "0.2,1.0", "n_free": 8},
               "book": {},
               "paper": {"n_seeds": 8, "n_p": 256, "n_parents": 16, "n_children": 8, "n_free": 512, "n_q": 1024,
                         "steps": 20000, "batch_size": 1024, "k": 8}}

    rules = (_list_rule(("rho_values",), "rho_values must be at least two comma-separated numbers in (0, 1]",
                        lambda x, v: 0 < x <= 1),
             _K_RULE)

    def reach(v):
        _reach_M({"n_p": v["n_p"], "n": v["n_parents"] * (1 + v["n_children"]) + v["n_free"], "M": v["M"],
                  "seed": v["seed"]})
    return Chapter("absorption_experiments", "absorption_experiments.md", "Experiment: feature absorption", p,
                   presets, rules, reach)


def _dead_neurons() -> Chapter:
    p = _experiment_common(32) | {
        "n": Param(48, "number of ground-truth features, n", low=2, high=20000),
        "S": Param(0.99, "base sparsity S", low=0.0, high=1.0, high_open=True),
        "width_ratios": Param("1,2,4,8", "n_q / n values of the width sweep"),
        "S_values": Param("0.9,0.99,0.998", "sparsities of the sparsity sweep"),
        "lr_values": Param("0.001,0.01,0.03", "learning rates of the learning-rate sweep"),
        "init_values": Param("0.1,1,10", "initialisation scales of the init sweep"),
        "base_ratio": Param(4.0, "n_q / n of the base setting", low=1.0, high=64.0),
        "windows": Param("10,100,1000", "dead-latent windows (steps) compared on the same runs"),
    }
    presets = {"smoke": {"n_seeds": 2, "steps": 150, "width_ratios": "1,4", "S_values": "0.9,0.99",
                         "lr_values": "0.001,0.03", "init_values": "0.1,10", "windows": "10,100"},
               "book": {},
               "paper": {"n_seeds": 8, "n_p": 768, "n": 1000, "steps": 20000, "batch_size": 1024, "k": 32,
                         "windows": "100,1000,10000"}}

    rules = (_list_rule(("width_ratios",), "width_ratios: at least two numbers in [1, 64)", lambda x, v: 1 <= x < 64),
             _list_rule(("S_values",), "S_values: at least two sparsities in [0, 1)", lambda x, v: 0 <= x < 1),
             _list_rule(("lr_values",), "lr_values: at least two learning rates in (0, 1)", lambda x, v: 0 < x < 1),
             _list_rule(("init_values",), "init_values: at least two scales in (0, 1000)",
                        lambda x, v: 0 < x < 1000),
             _list_rule(("windows", "steps"), "windows: at least two integers in [1, steps]",
                        lambda x, v: 1 <= x <= v["steps"], cast=int),
             (("k", "n"), "k must be <= n", lambda v: v["k"] <= v["n"]),
             M_RULE)
    return Chapter("dead_neurons", "dead_neurons.md", "Experiment: dead neurons", p, presets, rules, _reach_M)


def _resampling() -> Chapter:
    p = _experiment_common(32) | {
        "n": Param(48, "number of ground-truth features, n", low=2, high=20000),
        "S": Param(0.998, "sparsity S", low=0.0, high=1.0, high_open=True),
        "n_q": Param(96, "latents, n_q", low=2, high=131072),
        "init_scale": Param(1.0, "initialisation scale", low=0.0, low_open=True, high=1000.0),
        "dead_window": Param(100, "a latent silent for this many steps is dead (and resampled)", low=1),
        "n_seeds": Param(4, "seeds (the same for every remedy)", low=2, high=64),
        "track_every": Param(50, "steps between ground-truth metric records", low=1),
    }
    presets = {"smoke": {"n_seeds": 2, "steps": 240, "dead_window": 20, "track_every": 20},
               "book": {},
               "paper": {"n_seeds": 8, "n_p": 768, "n": 1000, "n_q": 16000, "steps": 30000, "batch_size": 4096,
                         "k": 32, "dead_window": 2000, "track_every": 1000}}
    rules = ((("dead_window", "steps"), "dead_window must be below steps / 6 (the resampling step)",
              lambda v: v["dead_window"] < v["steps"] // 6),
             _K_RULE, M_RULE)
    return Chapter("resampling", "resampling.md", "Experiment: neuron resampling", p, presets, rules, _reach_M)


CHAPTERS: dict[str, Chapter] = {c.name: c for c in [_framework(), _loss_approximation(), _biconvexity(),
                                                    _global_minima(), _spurious_minima(), _absorption_theory(),
                                                    _absorption_experiments(), _dead_neurons(), _resampling()]}


def get(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ParameterError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
    return CHAPTERS[name]


def resolve(name: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Validate a notebook's parameters, taken from ``namespace`` (its globals), for use in its second cell.

    When the environment variable ``SDL_PRESET`` names a preset (book builds, e.g. ``SDL_PRESET=smoke``), that
    preset's values replace the notebook's. Returns the full, checked parameter dict.
    """
    chapter = get(name)
    values = {k: namespace[k] for k in chapter.params if k in namespace}
    missing = sorted(set(chapter.params) - set(values))
    if missing:
        raise ParameterError(f"chapter {name!r}: the parameters cell does not define {', '.join(missing)}")
    preset = os.environ.get(PRESET_ENV, "")
    if preset:
        if preset not in PRESETS:
            raise ParameterError(f"{PRESET_ENV}={preset!r} is not a preset; allowed: {', '.join(PRESETS)}")
        values |= chapter.presets.get(preset, {})
    return chapter.resolve(values)
