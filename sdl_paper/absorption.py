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

from .data import Coefficients, GroundTruth


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

    def child_probs(self) -> Tensor:
        w = self.child_decay ** torch.arange(self.n_children, dtype=torch.float64)
        return w / w.sum()

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
    from .data import feature_matrix
    W = feature_matrix(n_p, coefficients.n, M, seed=seed)
    return GroundTruth(W, W, coefficients)
