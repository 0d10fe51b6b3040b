"""Synthetic ground truth under the linear representation hypothesis (the paper's Section 2 and its bench).

A *world* holds a sparse non-negative feature code x(s) in R^n and one or more **layers**, each a feature matrix
with unit columns (W_p is n_p x n). A :class:`GroundTruth` is one (input, target) view of the world:
x_p = W_p x and x_r = W_r x, which is all an SDL method sees (see :mod:`sdl_paper.theory.methods`).

Coefficients: x_d = m_d * (c_min + E_d), m_d ~ Bernoulli(1 - S_d), E_d ~ Exponential with mean beta,
all independent (the paper's bench).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor


class InterferenceUnreachable(ValueError):
    """The feature-matrix generator could not reach the requested maximum interference M."""


def _check(name: str, value: float, low: float, high: float, low_open=False, high_open=False) -> None:
    lo_ok = value > low if low_open else value >= low
    hi_ok = value < high if high_open else value <= high
    if not (lo_ok and hi_ok):
        rng = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name}={value!r} is out of range: allowed {rng}")


def max_interference(W: Tensor) -> float:
    """M = max_{i != j} <w_i, w_j> over the columns of ``W`` (n_p x n); -inf for a single column."""
    G = W.T @ W
    G.fill_diagonal_(float("-inf"))
    return G.max().item()


def feature_matrix(n_p: int, n: int, M: float, seed: int = 0, max_steps: int = 5000, lr: float = 0.01,
                   eps: float = 0.01, lam: float = 0.01, dtype=torch.float32) -> Tensor:
    """A feature matrix W_p (n_p x n) with unit columns and maximum interference <= M.

    Projected gradient descent as on the paper's bench: start from normalised Gaussian columns, descend
    ``sum_{i!=j} relu(<w_i,w_j> - (M - eps))^2 + lam * sum_{i!=j} relu(<w_i,w_j>)^2`` with Adam and renormalise the
    columns after every step, until ``max_{i!=j} <w_i, w_j> <= M``. Only positive interference is bounded.

    Raises:
        ValueError: for sizes or M out of range (M must be in [-1/(n-1), 1): no n unit vectors have all pairwise
            inner products below -1/(n-1)).
        InterferenceUnreachable: when ``max_steps`` steps do not reach M (the message gives the value reached).
    """
    if n_p < 1 or n < 1:
        raise ValueError(f"n_p={n_p} and n={n} must be positive integers")
    floor = -1.0 / (n - 1) if n > 1 else -1.0
    _check("M", M, floor, 1.0, high_open=True)
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_p, n, generator=g, dtype=torch.float64)
    W = W / W.norm(dim=0, keepdim=True)
    if n == 1:
        return W.to(dtype)
    W.requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)
    off = ~torch.eye(n, dtype=torch.bool)
    reached = float("inf")
    for _ in range(max_steps + 1):
        G = (W.T @ W)[off]
        reached = G.max().item()
        if reached <= M:
            return W.detach().to(dtype)
        loss = torch.relu(G - (M - eps)).pow(2).sum() + lam * torch.relu(G).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            W /= W.norm(dim=0, keepdim=True)
    raise InterferenceUnreachable(
        f"M={M} not reached for n={n} features in n_p={n_p} dimensions after max_steps={max_steps} "
        f"(best max interference {reached:.4f}); raise M or max_steps, or lower n / n_p")


def second_moment(c_min: float, beta: float) -> float:
    """E[(c_min + E)^2] for E ~ Exponential(mean beta): c_min^2 + 2 c_min beta + 2 beta^2."""
    return c_min ** 2 + 2 * c_min * beta + 2 * beta ** 2


@dataclass
class Coefficients:
    """The law of the feature code x(s) in R^n: independent Bernoulli(1 - S_d) masks times c_min + Exp(beta).

    ``S`` is a scalar or a tensor of shape (n,) (per-feature sparsity, each in [0, 1)).
    """

    n: int
    S: float | Tensor
    c_min: float = 0.0
    beta: float = 1.0

    def __post_init__(self):
        S = torch.as_tensor(self.S, dtype=torch.float64)
        if S.ndim == 0:
            _check("S", S.item(), 0.0, 1.0, high_open=True)
        elif S.shape != (self.n,) or not bool(((S >= 0) & (S < 1)).all()):
            raise ValueError(f"S must be a scalar or shape ({self.n},) with entries in [0, 1), got shape {tuple(S.shape)}")
        _check("c_min", self.c_min, 0.0, float("inf"))
        _check("beta", self.beta, 0.0, float("inf"), low_open=True)

    @property
    def p(self) -> Tensor:
        """Activation probabilities 1 - S_d, shape (n,)."""
        return (1 - torch.as_tensor(self.S, dtype=torch.float64)).expand(self.n)

    def sample(self, batch: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        """A batch of codes x, shape (batch, n), non-negative, on the generator's device (data for a GPU is drawn
        on the GPU)."""
        dev = generator.device
        p = self.p.to(dtype=dtype, device=dev)
        mask = torch.rand(batch, self.n, generator=generator, dtype=dtype, device=dev) < p
        x = torch.zeros(batch, self.n, dtype=dtype, device=dev)
        n_on = int(mask.sum())            # magnitudes are drawn only for the active entries (fast when sparse)
        x[mask] = self.c_min + self.beta * torch.empty(n_on, dtype=dtype, device=dev).exponential_(
            1.0, generator=generator)
        return x

    def M_d(self) -> Tensor:
        """Exact M_d = P(only feature d active) * E[x_d^2 | x_d > 0], shape (n,), float64."""
        p = self.p
        all_off = torch.prod(1 - p)
        only_d = p * all_off / (1 - p)
        return only_d * second_moment(self.c_min, self.beta)


def estimate_M_d(x: Tensor) -> tuple[Tensor, Tensor]:
    """Monte Carlo M_d from samples x (N, n): mean of 1[only d active] x_d^2, with its standard error (both (n,))."""
    single = (x > 0).sum(dim=1, keepdim=True) == 1
    v = (x.double() ** 2) * single
    return v.mean(0), v.std(0) / len(x) ** 0.5


@dataclass
class GroundTruth:
    """One (input, target) view of a world: x_p = W_p x (W_p is n_p x n), x_r = W_r x (W_r is n_r x n)."""

    W_p: Tensor
    W_r: Tensor
    coefficients: Coefficients

    @property
    def n(self) -> int:
        return self.W_p.shape[1]

    @property
    def n_p(self) -> int:
        return self.W_p.shape[0]

    @property
    def n_r(self) -> int:
        return self.W_r.shape[0]

    def M_d(self) -> Tensor:
        return self.coefficients.M_d()

    def with_sparsity(self, S: float | Tensor) -> "GroundTruth":
        """The same directions under a code law with sparsity ``S`` (c_min and beta kept)."""
        c = self.coefficients
        return GroundTruth(self.W_p, self.W_r, Coefficients(c.n, S, c.c_min, c.beta))

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """(x, x_p, x_r) with shapes (batch, n), (batch, n_p), (batch, n_r)."""
        x = self.coefficients.sample(batch, generator, dtype=self.W_p.dtype)
        return x, x @ self.W_p.T, x @ self.W_r.T

    def batches(self, batch: int, n_batches: int, seed: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Stream ``n_batches`` fresh batches from a seeded generator (nothing is materialised beyond one batch)."""
        g = torch.Generator().manual_seed(seed)
        for _ in range(n_batches):
            yield self.sample(batch, g)


@dataclass
class World:
    """A feature code law and ``len(layers)`` feature matrices, each (n_layer x n) with unit columns."""

    layers: list[Tensor]
    coefficients: Coefficients

    def view(self, inputs: list[int], targets: list[int]) -> GroundTruth:
        """The view reading the stacked ``inputs`` layers and reconstructing the stacked ``targets`` layers.

        Stacking m layers gives columns of norm sqrt(m); they are divided by sqrt(m) to keep unit columns
        (assumption 2), so a crosscoder over m layers sees each layer scaled by 1/sqrt(m).
        """
        def stack(idx):
            if not idx or any(not 0 <= i < len(self.layers) for i in idx):
                raise ValueError(f"layer indices {idx} must be non-empty and within 0..{len(self.layers) - 1}")
            return torch.cat([self.layers[i] for i in idx]) / len(idx) ** 0.5
        return GroundTruth(stack(inputs), stack(targets), self.coefficients)


def make_world(n_p: int, n: int, S: float, M: float, n_layers: int = 2, c_min: float = 0.0, beta: float = 1.0,
               seed: int = 0, **pgd) -> World:
    """A world of ``n_layers`` independent feature matrices (each n_p x n, interference <= M) and one code law.

    Layer 0 plays the model's representation x_p; layer 1 a second site (an MLP's output, another layer).
    Extra keyword arguments go to :func:`feature_matrix`.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers={n_layers} must be >= 1")
    coefficients = Coefficients(n, S, c_min, beta)  # validates S, c_min, beta before any work
    layers = [feature_matrix(n_p, n, M, seed=seed + 7919 * i, **pgd) for i in range(n_layers)]
    return World(layers, coefficients)
