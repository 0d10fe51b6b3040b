"""Synthetic ground truth under the linear representation hypothesis (the paper's Section 2 and its bench).

A *world* holds a sparse non-negative feature code x(s) in R^n and one or more **layers**, each a feature matrix
with unit columns (W_p is n_p x n). A :class:`GroundTruth` is one (input, target) view of the world:
x_p = W_p x and x_r = W_r x, which is all an SDL method sees (see :mod:`sdl_paper.theory.instantiations`).

Coefficients: x_d = m_d * (c_min + E_d), m_d ~ Bernoulli(1 - S_d), E_d ~ Exponential with mean beta,
all independent (the paper's bench).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor


class InterferenceUnreachable(ValueError):
    """The feature-matrix generator could not reach the requested maximum interference M.

    ``reached`` is the smallest maximum interference the search reached and ``W`` (n_p x n) the matrix that
    reached it (both None when M was refused before any search, as provably out of reach).
    """

    def __init__(self, message: str, reached: float | None = None, W: Tensor | None = None):
        super().__init__(message)
        self.reached, self.W = reached, W


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


def welch_bound(n_p: int, n: int) -> float:
    """Welch bound sqrt((n - n_p) / (n_p (n - 1))): no n unit vectors in R^n_p have all |<w_i, w_j>| below it.

    It bounds the *absolute* interference; the signed M of :func:`feature_matrix` can go lower (see
    :func:`most_vectors`). 0 when n <= n_p.
    """
    return ((n - n_p) / (n_p * (n - 1))) ** 0.5 if n > n_p else 0.0


def most_vectors(n_p: int, M: float) -> float:
    """An upper bound on how many unit vectors in R^n_p can have all pairwise inner products <= M.

    Delsarte's linear-programming bound with the polynomials (t - M)(t + 1) and (t - M)(t + b)^2 (Levenshtein's
    L_2 and L_3, b = (1 + M) / (1 + n_p M)), and for M < 0 the simplex bound min(n_p + 1, 1 - 1/M). M = 0 gives
    Rankin's 2 n_p. inf where these polynomials prove nothing.
    """
    bound = min(n_p + 1, 1 - 1 / M) if M < 0 else float("inf")
    if n_p * M < 1:
        bound = min(bound, 2 * n_p * (1 - M) / (1 - n_p * M))
    if 1 + n_p * M > 0:
        b = (1 + M) / (1 + n_p * M)
        f0 = (2 * b - M) / n_p - M * b * b            # the constant Gegenbauer coefficient of (t - M)(t + b)^2
        if f0 > 0:
            bound = min(bound, (1 - M) * (1 + b) ** 2 / f0)
    return bound


def _fits(n_p: int, n: int, M: float) -> bool:
    return n <= most_vectors(n_p, M) * (1 + 1e-9) + 1e-9


def interference_floor(n_p: int, n: int) -> float:
    """The smallest M that :func:`most_vectors` does not rule out for n vectors in R^n_p (to 1e-6)."""
    lo, hi = -1.0, 1.0 - 1e-12
    while hi - lo > 1e-7:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _fits(n_p, n, mid) else (mid, hi)
    return hi


def _descend(W: Tensor, M: float, steps: int, lr: float, c: float, lam: float, decay: float):
    """Projected Adam on ``sum_{i!=j} relu(G_ij - c)^2 + lam * relu(G_ij)^2`` for G = W^T W, W (n_p x n) float64,
    with the learning rate decaying geometrically by the factor ``decay`` over ``steps``; columns renormalised
    after every step. Stops as soon as max_{i!=j} G_ij <= M. Returns (W, best value, best W, steps taken).

    With decay = 1 this is bit for bit the bench's descent (the gradient is written out, with the same rounding).
    """
    n = W.shape[1]
    W = W.clone().requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)
    best, best_W = float("inf"), None
    with torch.no_grad():
        V = W.detach()
        G, a, b, g = torch.empty(n, n, dtype=W.dtype), torch.empty(n, n, dtype=W.dtype), torch.empty(
            n, n, dtype=W.dtype), torch.empty_like(V)
        W.grad = torch.empty_like(V)
        for step in range(steps + 1):
            torch.mm(V.T, V, out=G)
            G.fill_diagonal_(float("-inf"))
            reached = G.max().item()
            if reached < best:
                best, best_W = reached, V.clone()
            if reached <= M:
                break
            if decay != 1:
                opt.param_groups[0]["lr"] = lr * decay ** (step / max(steps, 1))
            torch.sub(G, c, out=a).relu_().mul_(2)                  # d/dG of relu(G - c)^2
            if lam:
                a.add_(torch.clamp_min(G, 0, out=b).mul_(2).mul_(lam))
            torch.mm(V, a.T, out=W.grad)                            # d/dW of <loss, W^T W>, as autograd rounds it
            W.grad.add_(torch.mm(V, a, out=g))
            opt.step()
            V.div_(V.norm(dim=0, keepdim=True))
    return V, best, best_W, step


def feature_matrix(n_p: int, n: int, M: float, seed: int = 0, max_steps: int = 5000, lr: float = 0.01,
                   eps: float = 0.01, lam: float = 0.01, restarts: int = 3, dtype=torch.float32) -> Tensor:
    """A feature matrix W_p (n_p x n) with unit columns and maximum interference max_{i!=j} <w_i, w_j> <= M.

    First the paper's bench: projected gradient descent from normalised Gaussian columns (seeded by ``seed``),
    descending ``sum_{i!=j} relu(<w_i,w_j> - (M - eps))^2 + lam * sum_{i!=j} relu(<w_i,w_j>)^2`` with Adam and
    renormalising the columns after every step, for at most ``max_steps`` steps. Only positive interference is
    bounded. If that fails, ``restarts`` further descents (the first from the bench's best matrix, the others
    from fresh Gaussian columns of the same seed's stream) share another ``max_steps`` steps, without the lam term,
    with a margin eps / 5 and the learning rate decaying from ``lr`` to lr / 100. Whatever succeeds first is
    returned, so every matrix the bench finds is unchanged.

    Raises:
        ValueError: for sizes or M out of range (M must be in [-1/(n-1), 1): no n unit vectors have all pairwise
            inner products below -1/(n-1)).
        InterferenceUnreachable: at once when the linear-programming bound (:func:`most_vectors`) proves that no
            n unit vectors in R^n_p reach M; otherwise when no descent reaches M (the message gives the best value
            reached and the Welch bound; the exception carries it and its matrix as ``reached`` and ``W``).
    """
    if n_p < 1 or n < 1:
        raise ValueError(f"n_p={n_p} and n={n} must be positive integers")
    floor = -1.0 / (n - 1) if n > 1 else -1.0
    _check("M", M, floor, 1.0, high_open=True)
    if restarts < 0:
        raise ValueError(f"restarts={restarts} must be >= 0")
    if n > 1 and not _fits(n_p, n, M):
        raise InterferenceUnreachable(
            f"M={M} cannot be reached by any n={n} unit vectors in n_p={n_p} dimensions: the linear-programming "
            f"bound allows at most {int(most_vectors(n_p, M) + 1e-9)} of them, and n vectors need M >= "
            f"{interference_floor(n_p, n):.4f}; raise M or n_p, or lower n")
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_p, n, generator=g, dtype=torch.float64)
    W = W / W.norm(dim=0, keepdim=True)
    if n == 1:
        return W.to(dtype)
    V, best, best_W, _ = _descend(W, M, max_steps, lr, M - eps, lam, 1.0)
    for r in range(restarts):
        if best <= M:
            return V.to(dtype)
        start = best_W if r == 0 and best_W is not None else torch.randn(n_p, n, generator=g, dtype=torch.float64)
        V, reached, W_r, _ = _descend(start / start.norm(dim=0, keepdim=True), M, max_steps // restarts, lr,
                                      M - eps / 5, 0.0, 0.01)
        if reached < best:
            best, best_W = reached, W_r
    if best <= M:
        return V.to(dtype)
    raise InterferenceUnreachable(
        f"M={M} not reached for n={n} features in n_p={n_p} dimensions after max_steps={max_steps} and "
        f"{restarts} restarts: best max interference {best:.4f} (for comparison, the Welch bound "
        f"{welch_bound(n_p, n):.4f} bounds max |<w_i, w_j>|, and the linear-programming bound allows M >= "
        f"{interference_floor(n_p, n):.4f}); raise M, max_steps or restarts, or lower n / n_p",
        best, None if best_W is None else best_W.to(dtype))


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
        mask = torch.rand(batch, self.n, generator=generator, dtype=dtype, device=dev) < self._p_on(dtype, dev)
        n_on = int(mask.sum())            # magnitudes are drawn only for the active entries (fast when sparse)
        vals = torch.empty(n_on, dtype=dtype, device=dev).exponential_(1.0, generator=generator)
        if self.beta != 1.0:
            vals.mul_(self.beta)
        if self.c_min:
            vals.add_(self.c_min)
        return torch.zeros(batch, self.n, dtype=dtype, device=dev).masked_scatter_(mask, vals)

    def _p_on(self, dtype, dev) -> Tensor:
        """:attr:`p` in ``dtype`` on ``dev``, kept between calls for a scalar S (a tensor S may change in place)."""
        if isinstance(self.S, Tensor):
            return self.p.to(dtype=dtype, device=dev)
        key = (self.S, self.n, dtype, str(dev))
        if getattr(self, "_p_cache", (None,))[0] != key:
            self._p_cache = (key, self.p.to(dtype=dtype, device=dev))
        return self._p_cache[1]

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
