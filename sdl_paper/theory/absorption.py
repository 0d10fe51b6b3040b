"""Feature absorption from hierarchy (the paper's Definition 3.2 and Theorem 3.8), as constructions.

A parent concept P is active iff one of its children c_1..c_k is, so a child never appears without its parent: the
inputs that occur "alone" are the *atoms* v_j = (w_P + w_{c_j}) / ||w_P + w_{c_j}||, one per child. A latent
*absorbs* when it fires for a child's atom while the parent's latent stays silent on it.

The activation is the threshold form of the theorem, a JumpReLU with one global threshold c:
F_i = {atoms d : <w_E^i, v_d> > c}. Rows: W_E is (n_q, n_p); atoms are columns of V (n_p, n_atoms).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linprog
from torch import Tensor

from ..data.ground_truth import Coefficients, GroundTruth


@dataclass
class Hierarchy:
    """Parents and their children as columns of one direction matrix W (n_p, n_dirs).

    ``parents[i]`` is the column of parent i; ``children[i]`` the columns of its children. ``atoms()`` gives the
    inputs that appear alone, one per (parent, child), ordered parent by parent.
    """

    W: Tensor
    parents: list[int]
    children: list[list[int]]

    def atoms(self) -> Tensor:
        cols = [self.W[:, p] + self.W[:, c] for p, kids in zip(self.parents, self.children) for c in kids]
        V = torch.stack(cols, dim=1)
        return V / V.norm(dim=0, keepdim=True)

    def owner(self) -> Tensor:
        """(n_atoms,) the parent index of each atom."""
        return torch.tensor([i for i, kids in enumerate(self.children) for _ in kids])

    def ground_truth(self, S: float = 0.99) -> GroundTruth:
        """The SAE view whose 'features' are the atoms (each atom seen alone with probability set by S)."""
        V = self.atoms()
        return GroundTruth(V, V, Coefficients(V.shape[1], S))


def max_atom_interference(V: Tensor) -> float:
    G = V.T @ V
    G.fill_diagonal_(float("-inf"))
    return G.max().item()


def threshold_pattern(W_E: Tensor, V: Tensor, c: float) -> Tensor:
    """F (n_q, n_atoms), bool: <w_E^i, v_d> > c."""
    return (W_E @ V) > c


def faithful_encoder(h: Hierarchy, scale: float = 1.0) -> Tensor:
    """One latent per parent, its row ``scale`` * w_P: it fires for every child atom of that parent (for a suitable c)."""
    return scale * h.W[:, h.parents].T.clone()


@dataclass
class Split:
    """The result of Theorem 3.8's construction."""

    W_E: Tensor        # (n_q + 1, n_p): the old rows (parent row scaled) and the new row alpha v_{j*}
    c_new: float       # the raised global threshold
    child: int         # the atom split off (index into the atoms)
    realized: bool     # whether the new encoder has exactly the intended pattern


def split_child(W_E: Tensor, V: Tensor, c: float, parent_row: int, child: int | None = None,
                rescale_others: bool = True) -> Split:
    """Theorem 3.8's construction: split one child atom off the parent latent ``parent_row``.

    With a_j = <w_E^{i*}, v_j> the parent latent's activations on its atoms F_{i*} (all > c) and j* the atom with the
    smallest a_j (or ``child``, to try another one): scale the parent row by (c + a_j*) / (2 a_j*), raise the global
    threshold to c' just above (c + a_j*) / 2, and add the row alpha v_{j*}, alpha = 2 c' / (1 + M) with M the
    atoms' maximum interference. The global threshold also moves every other latent's cut: with
    ``rescale_others`` their rows are multiplied by c' / c, which keeps their patterns; without it they may change.
    """
    if not c > 0:
        raise ValueError(f"the construction needs a positive threshold c, got {c}")
    F = threshold_pattern(W_E, V, c)
    members = F[parent_row].nonzero().flatten()
    if len(members) < 2:
        raise ValueError(f"latent {parent_row} fires for {len(members)} atoms; it needs at least two to split one off")
    a = W_E[parent_row] @ V[:, members]
    j_star = int(members[a.argmin()]) if child is None else child
    if j_star not in members.tolist():
        raise ValueError(f"atom {j_star} does not fire latent {parent_row}")
    a_j = float(W_E[parent_row] @ V[:, j_star])
    c_mid = (c + a_j) / 2
    others_after = (a * (c_mid / a_j))[members != j_star]
    gap = float(others_after.min()) - c_mid if len(others_after) else 1.0
    c_new = c_mid + 1e-3 * max(gap, 1e-9) if gap > 0 else c_mid * (1 + 1e-9)
    M = max_atom_interference(V)
    new = W_E.clone()
    if rescale_others:
        new = new * (c_new / c)
    new[parent_row] = W_E[parent_row] * c_mid / a_j
    alpha = 2 * c_new / (1 + M)
    new = torch.cat([new, alpha * V[:, j_star][None]])
    target = torch.cat([F, torch.zeros(1, F.shape[1], dtype=torch.bool)])
    target[parent_row, j_star] = False
    target[-1, j_star] = True
    return Split(new, c_new, j_star, bool(torch.equal(threshold_pattern(new, V, c_new), target)))


def row_exists(V: Tensor, fire: list[int], c: float, margin: float = 1e-6) -> bool:
    """Is there any row w with <w, v_d> >= c + margin exactly for the atoms in ``fire`` and <= c - margin for the rest?

    A linear feasibility problem (scipy's HiGHS). With c > 0 it decides whether one threshold latent can have this
    firing set at all, whatever the other latents do.
    """
    Vn = V.double().numpy()
    rest = [d for d in range(Vn.shape[1]) if d not in fire]
    A = np.vstack([-Vn[:, fire].T, Vn[:, rest].T])
    b = np.concatenate([-(c + margin) * np.ones(len(fire)), (c - margin) * np.ones(len(rest))])
    res = linprog(np.zeros(Vn.shape[0]), A_ub=A, b_ub=b, bounds=(None, None), method="highs")
    return res.status == 0


@dataclass
class TreeCoefficients:
    """Codes of a two-level hierarchy (Definition 3.2 with controllable co-occurrence), for training experiments.

    Columns: parents 0..P-1, then each parent's ``n_children`` children (parent-major), then ``n_free`` unrelated
    features. Parent i is active with probability ``p_parent``; given that, with probability ``rho`` exactly one child
    is active (child j with probability proportional to ``child_decay ** j``), otherwise the parent appears alone.
    A child never appears without its parent (at rho = 1 this is the paper's "parent iff some child"). Free features
    are active with probability ``p_free``. Every active entry has magnitude c_min + Exp(beta).
    """

    n_parents: int
    n_children: int
    n_free: int = 0
    p_parent: float = 0.05
    rho: float = 0.9
    child_decay: float = 0.7
    p_free: float = 0.01
    c_min: float = 0.0
    beta: float = 1.0

    def __post_init__(self):
        for name in ("p_parent", "rho", "p_free"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be in [0, 1]")
        if self.n_parents < 1 or self.n_children < 1 or self.n_free < 0:
            raise ValueError("need n_parents >= 1, n_children >= 1, n_free >= 0")
        if not 0 < self.child_decay <= 1:
            raise ValueError(f"child_decay={self.child_decay!r} must be in (0, 1]")

    @property
    def n(self) -> int:
        return self.n_parents * (1 + self.n_children) + self.n_free

    def child(self, parent: int, j: int) -> int:
        """Column of child j of ``parent``."""
        return self.n_parents + parent * self.n_children + j

    def edges(self) -> list[tuple[int, int]]:
        """Every (parent column, child column) edge of the hierarchy, parent-major."""
        return [(p, self.child(p, j)) for p in range(self.n_parents) for j in range(self.n_children)]

    def child_probs(self) -> Tensor:
        w = self.child_decay ** torch.arange(self.n_children, dtype=torch.float64)
        return w / w.sum()

    def M_d(self) -> Tensor:
        """(n,) float64: the probability that feature d is the only active one (the paper's M_d). A child never
        appears without its parent, so its M_d is 0; a parent's is 0 at rho = 1 (Def 3.2: parent iff a child)."""
        P, C, F = self.n_parents, self.n_children, self.n_free
        quiet_p, quiet_f = (1 - self.p_parent) ** P, (1 - self.p_free) ** F
        M = torch.zeros(self.n, dtype=torch.float64)
        M[:P] = self.p_parent * (1 - self.rho) * quiet_p / (1 - self.p_parent) * quiet_f if self.p_parent < 1 else 0.0
        if F:
            M[P * (1 + C):] = self.p_free * quiet_p * quiet_f / (1 - self.p_free) if self.p_free < 1 else 0.0
        return M

    def sample(self, batch: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        """A batch of codes x, shape (batch, n), non-negative, with the hierarchy's implications."""
        P, C = self.n_parents, self.n_children
        on = torch.zeros(batch, self.n, dtype=torch.bool)
        parent_on = torch.rand(batch, P, generator=generator) < self.p_parent
        with_child = parent_on & (torch.rand(batch, P, generator=generator) < self.rho)
        which = torch.multinomial(self.child_probs().expand(batch * P, C), 1, generator=generator).view(batch, P)
        on[:, :P] = parent_on
        cols = P + torch.arange(P) * C + which                              # (batch, P) child columns
        on.scatter_(1, cols, with_child)
        if self.n_free:
            on[:, P * (1 + C):] = torch.rand(batch, self.n_free, generator=generator) < self.p_free
        x = torch.zeros(batch, self.n, dtype=dtype)
        x[on] = self.c_min + self.beta * torch.empty(int(on.sum()), dtype=dtype).exponential_(1.0, generator=generator)
        return x


def tree_ground_truth(n_p: int, coefficients: TreeCoefficients, M: float, seed: int = 0) -> GroundTruth:
    """The SAE view of a hierarchy: all parent, child and free directions with interference <= M (W_p = W_r)."""
    from ..data.ground_truth import feature_matrix
    W = feature_matrix(n_p, coefficients.n, M, seed=seed)
    return GroundTruth(W, W, coefficients)


def break_tie(W_E: Tensor, V: Tensor, c: float, parent_row: int, child: int) -> Tensor:
    """A tie-breaking step before :func:`split_child`: tilt the parent row to w - eps v_child.

    The activation on ``child`` drops by eps, that on another atom d by eps <v_child, v_d>, which is less when the
    atoms are distinct unit vectors (<v_child, v_d> < 1): ``child`` becomes the unique least activated atom of the
    latent. eps is half the largest value that keeps the pattern (members stay above c, non-members at or below c);
    it needs c < a_child and strict slack c - <w, v_d> > 0 for non-members with <v_child, v_d> < 0. Returns a copy
    of W_E (n_q, n_p) with the parent row tilted; raises ValueError when no eps > 0 keeps the pattern.
    """
    w, v = W_E[parent_row], V[:, child]
    act, g = w @ V, v @ V                                 # (n_atoms,) activations and alignment with the child
    members = act > c
    if not members[child]:
        raise ValueError(f"atom {child} does not fire latent {parent_row}")
    if (g[torch.arange(V.shape[1]) != child] >= 1 - 1e-12).any():
        raise ValueError("another atom coincides with the child: no tilt separates them")
    bounds = [float(act[child]) - c]                      # keep the child above c
    rising = ~members & (g < 0)                           # non-members whose activation rises with the tilt
    if rising.any():
        bounds.append(float(((c - act[rising]) / -g[rising]).min()))
    eps = 0.5 * min(bounds)
    if not eps > 0:
        raise ValueError("no slack: a non-member sits exactly at the threshold")
    out = W_E.clone()
    out[parent_row] = w - eps * v
    return out


def no_row_certificate(V: Tensor, fire: list[int], c: float, tol: float = 1e-9):
    """A Farkas certificate that NO row w has <w, v_d> > c exactly for d in ``fire`` and <= c for the rest (c >= 0).

    Looks for y >= 0 on ``fire`` (sum 1) and z >= 0 on the rest with sum_k y_k v_k = sum_d z_d v_d and, when
    c > 0, sum z <= 1. Then any w at or below c on the rest has sum_k y_k <w, v_k> = sum_d z_d <w, v_d> <= c, so
    some atom of ``fire`` is at or below c too. Returns (y, z, residual) as numpy arrays and the residual norm of
    the equality, or None when no certificate exists (then the firing set is realizable, up to margins).
    """
    if c < 0:
        raise ValueError("the certificate is stated for c >= 0")
    Vn = V.double().numpy()
    rest = [d for d in range(Vn.shape[1]) if d not in fire]
    nf, nr = len(fire), len(rest)
    A_eq = np.vstack([np.hstack([Vn[:, fire], -Vn[:, rest]]), np.r_[np.ones(nf), np.zeros(nr)][None]])
    b_eq = np.r_[np.zeros(Vn.shape[0]), 1.0]
    A_ub = np.r_[np.zeros(nf), np.ones(nr)][None] if c > 0 else None
    res = linprog(np.zeros(nf + nr), A_ub=A_ub, b_ub=[1.0] if c > 0 else None, A_eq=A_eq, b_eq=b_eq,
                  bounds=(0, None), method="highs")
    if res.status != 0:
        return None
    y, z = res.x[:nf], res.x[nf:]
    resid = float(np.linalg.norm(Vn[:, fire] @ y - Vn[:, rest] @ z))
    return (y, z, resid) if resid < tol else None


def pattern_partial_minimum(V: Tensor, weights: Tensor, groups: list[list[int]], c: float):
    """The spurious-minima chapter's rank-one construction for a partition of the atoms, at threshold ``c``.

    V (n_p, n_atoms) atoms (inputs and targets, an SAE), weights (n_atoms,) the M_d, groups the atoms of each latent.
    For group i, u_i is the top left singular vector of [sqrt(M_d) v_d] and the row w_E^i is the minimum-norm
    solution of <w, v_d> = <u_i, v_d> on the group and 0 on the other atoms (exact for linearly independent atoms).
    Returns (W_E (n_groups, n_p), W_D (n_p, n_groups)), or None when that row system has no exact solution or some
    target activation <u_i, v_d> is not above c (then this encoder does not realize the pattern).
    """
    T = torch.zeros(len(groups), V.shape[1], dtype=V.dtype)
    U = torch.zeros(V.shape[0], len(groups), dtype=V.dtype)
    for i, g in enumerate(groups):
        u = torch.linalg.svd(V[:, g] * weights[g].sqrt(), full_matrices=False)[0][:, 0]
        u = u if (u @ V[:, g]).sum() > 0 else -u
        U[:, i], T[i, g] = u, u @ V[:, g]
    W_E = T @ torch.linalg.pinv(V)
    if not torch.allclose(W_E @ V, T, atol=1e-10) or bool((T.sum(0) <= c).any()):
        return None
    return W_E, U


@dataclass
class Tree(TreeCoefficients):
    """:class:`TreeCoefficients` with a control and device-aware sampling (batches are drawn on the generator's
    device, so a CUDA run draws its data on the GPU).

    With ``independent=True`` (the control) every marginal firing rate is the hierarchy's, but children are drawn
    independently of their parent: parent i with probability ``p_parent``, its child j with probability
    ``p_parent * rho * q_j`` (q the ``child_decay`` law), free features with ``p_free``. A child then no longer
    implies its parent, so an absorption score must be near zero on it.
    """

    independent: bool = False

    def M_d(self) -> Tensor:
        """(n,) float64: the probability that feature d is the only active one; in the control every feature is an
        independent Bernoulli, so M_d = r_d prod_{e != d} (1 - r_e) with r the marginal firing rates."""
        if not self.independent:
            return super().M_d()
        P, C = self.n_parents, self.n_children
        r = torch.cat([torch.full((P,), self.p_parent, dtype=torch.float64),
                       (self.p_parent * self.rho * self.child_probs()).repeat(P),
                       torch.full((self.n_free,), self.p_free, dtype=torch.float64)])
        others = torch.stack([torch.cat([1 - r[:d], 1 - r[d + 1:]]).prod() for d in range(self.n)])
        return r * others

    def sample(self, batch: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        dev = generator.device
        P, C = self.n_parents, self.n_children
        u = lambda *s: torch.rand(*s, generator=generator, device=dev)      # noqa: E731
        on = torch.zeros(batch, self.n, dtype=torch.bool, device=dev)
        parent_on = u(batch, P) < self.p_parent
        on[:, :P] = parent_on
        q = self.child_probs().to(device=dev, dtype=torch.float32)
        if self.independent:
            rate = (self.p_parent * self.rho * q).repeat(P)                  # (P * C,) parent-major
            on[:, P:P * (1 + C)] = u(batch, P * C) < rate
        else:
            with_child = parent_on & (u(batch, P) < self.rho)
            which = torch.searchsorted(q.cumsum(0), u(batch, P)).clamp_max(C - 1)   # child j w.p. q_j
            cols = P + torch.arange(P, device=dev) * C + which
            on.scatter_(1, cols, with_child)
        if self.n_free:
            on[:, P * (1 + C):] = u(batch, self.n_free) < self.p_free
        mag = torch.empty(batch, self.n, dtype=dtype, device=dev).exponential_(1.0, generator=generator)
        return on.to(dtype) * (self.c_min + self.beta * mag)
