"""Chapter parameters and their rules: the types every chapter registry entry is built from.

A :class:`Param` knows its default, type, range and meaning; a :class:`Chapter` holds a notebook's parameters,
presets and cross-parameter rules, and :meth:`Chapter.resolve` checks every value before anything runs. The
chapters themselves are listed in :mod:`sdl_paper.book.chapters`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def _notebooks() -> Path:
    """The chapters' folder: ``notebooks/`` of a source checkout, else the copy a wheel installs in the package."""
    here = Path(__file__).resolve().parent.parent
    checkout = here.parent / "notebooks"
    return checkout if (checkout / "framework.md").is_file() else here / "notebooks"


NOTEBOOKS = _notebooks()
PRESETS = ("smoke", "book", "paper")


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
        if values.get("device") == "cuda":
            _check_cuda()
        for names, message, ok in self.rules:
            try:
                passed, detail = ok(values), ""
            except ValueError as e:
                passed, detail = False, f": {e}"
            if not passed:
                got = ", ".join(f"{k}={values[k]!r}" for k in names)
                raise ParameterError(f"chapter {self.name!r}: {message} (got {got}){detail}")
        return values


def _check_cuda() -> None:
    import torch
    if not torch.cuda.is_available():
        raise ParameterError(f"parameter 'device'='cuda': torch {torch.__version__} sees no CUDA device here; "
                             f"allowed here: 'auto' or 'cpu'")


def device_param() -> Param:
    """Where a chapter trains and generates its data: 'auto' (CUDA when available), 'cpu' or 'cuda'."""
    return Param("auto", "where to train and generate data (auto: CUDA when available)",
                 choices=("auto", "cpu", "cuda"))


def _activation_ok(spec: str, n_q: int) -> bool:
    """A valid activation spec whose every k (TopK, BatchTopK) is at most n_q."""
    from ..theory.activations import make_activation
    sigma = make_activation(spec)  # a ValueError here explains what is wrong with the spec
    return all(getattr(m, "k", 0) <= n_q for m in sigma.modules())


def _reach_M(v: dict) -> None:
    """Generate the chapter's feature matrix once: an unreachable interference bound M fails here, at once when
    the linear-programming bound (which contains Rankin's) proves that no n unit vectors reach it."""
    from ..data.ground_truth import InterferenceUnreachable, feature_matrix
    try:
        feature_matrix(v["n_p"], v["n"], v["M"], seed=v["seed"])
    except InterferenceUnreachable as e:
        raise ParameterError(f"parameter 'M'={v['M']!r} cannot be reached: {e}") from None
    except ValueError as e:                       # e.g. M below -1/(n-1): no n unit vectors reach it
        raise ParameterError(f"parameters n_p={v['n_p']}, n={v['n']}, M={v['M']!r}: {e}") from None


def _seed() -> Param:
    return Param(0, "RNG seed", low=0)


def _interference(default: float, help: str = "maximum interference between features, M") -> Param:
    """The interference bound M, in (-1, 1) (its lower limit -1/(n-1) is checked by a rule or the preflight)."""
    return Param(default, help, low=-1.0, high=1.0, low_open=True, high_open=True)


ACTIVATION_RULE = (("activation", "n_q"), "the activation spec must be valid and its k <= n_q",
                   lambda v: _activation_ok(v["activation"], v["n_q"]))
M_RULE = (("M", "n"), "M must be >= -1/(n-1): no n unit vectors are more spread out",
          lambda v: v["M"] >= -1 / (v["n"] - 1))


def _fires(S: float, samples: int, least: int = 50) -> bool:
    """Each feature is expected to fire in at least ``least`` of ``samples`` inputs at sparsity S."""
    return (1 - S) * samples >= least


def firing_rule(samples: Callable[[dict], int], what: str, names: tuple[str, ...] = ("S",)):
    """A rule: at sparsity v['S'] every feature fires at least 50 times in ``samples(v)`` inputs (else the
    chapter's estimates divide by zero or measure nothing)."""
    return ((names[0], *names[1:]), f"features must fire: need (1 - S) * {what} >= 50",
            lambda v: _fires(v["S"], samples(v)))


def number_list(text: str, cast: type = float) -> list:
    """The values of a comma-separated sweep parameter such as ``"0.2,0.6,1.0"``; a ValueError names a value that
    is not a number of that type (``"2.0"`` is not an int) or not finite (``inf``, ``nan``)."""
    out = []
    for t in text.split(","):
        try:
            x = cast(t.strip())
        except ValueError:
            raise ValueError(f"{t.strip()!r} is not a{'n int' if cast is int else ' number'}") from None
        if not math.isfinite(x):
            raise ValueError(f"{t.strip()!r} is not finite")
        out.append(x)
    return out


def _list_rule(names: tuple[str, ...], message: str, ok: Callable[[float, dict], bool], cast: type = float,
               least: int = 2):
    """A rule: ``names[0]`` holds at least ``least`` comma-separated values, each with ``ok(value, params)``."""
    def check(v):
        xs = number_list(v[names[0]], cast)
        return len(xs) >= least and all(ok(x, v) for x in xs)
    return names, message, check
