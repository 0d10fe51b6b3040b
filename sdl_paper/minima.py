"""Global minima, non-identifiability and spurious partial minima of L~ (the paper's Theorems 3.3, 3.4, 3.6 and
Example 3.5), as constructions on plain tensors: W_E is (n_q, n_p), W_D is (n_r, n_q).

A *partition pattern* assigns every feature to exactly one latent: ``assign[d] = i`` means F_i contains d; latents
that receive no feature are dead.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linprog
from torch import Tensor, nn

from .data import Coefficients, GroundTruth
from .regions import block_gradients, pattern, tilde_loss


def ground_truth_solution(gt: GroundTruth, n_q: int) -> tuple[Tensor, Tensor]:
    """Theorem 3.3's (W_E*, W_D*) = ([W_p^T; 0], [W_r, 0]) with n_q >= n latents."""
    if n_q < gt.n:
        raise ValueError(f"the ground-truth construction needs n_q >= n, got n_q={n_q}, n={gt.n}")
    W_E = torch.zeros(n_q, gt.n_p, dtype=gt.W_p.dtype)
    W_D = torch.zeros(gt.n_r, n_q, dtype=gt.W_r.dtype)
    W_E[:gt.n], W_D[:, :gt.n] = gt.W_p.T, gt.W_r
    return W_E, W_D


def ground_truth_bound(gt: GroundTruth) -> dict[str, float]:
    """The paper's bound n^2 M^2 sum_d M_d and ours, (n - 1)^2 M_+^2 sum_d M_d, for the ReLU ground truth.

    With ReLU, the residual of feature d is -sum_{e != d} relu(<w_p^e, w_p^d>) w_r^e, of norm at most (n - 1) M_+
    with M_+ = max(M, 0) (unit w_r^e, triangle inequality).
    """
    G = gt.W_p.T @ gt.W_p
    G.fill_diagonal_(float("-inf"))
    M = G.max().item()
    total = gt.M_d().sum().item()
    return {"M": M, "paper": gt.n ** 2 * M ** 2 * total, "ours": (gt.n - 1) ** 2 * max(M, 0.0) ** 2 * total}


def zero_loss_decoder(W_E: Tensor, gt: GroundTruth, sigma: nn.Module) -> Tensor:
    """Theorem 3.4: the W_D with W_D sigma(W_E w_p^d) = w_r^d for all d, i.e. W_D = W_r A^+ (A = sigma(W_E W_p)).

    Raises:
        ValueError: when A (n_q x n) has rank < n: then no decoder reaches zero loss for this encoder.
    """
    A = sigma(gt.W_p.T.to(W_E) @ W_E.T).T
    rank = int(torch.linalg.matrix_rank(A.double()))
    if rank < gt.n:
        raise ValueError(f"sigma(W_E W_p) has rank {rank} < n={gt.n}: no decoder gives zero loss for this encoder")
    return gt.W_r.to(W_E) @ torch.linalg.pinv(A)


def example_3_5() -> tuple[Tensor, Tensor, GroundTruth, str]:
    """The paper's Example 3.5: n = n_p = n_q = n_r = 2, M_1 = M_2 = 1, w_p^d = w_r^d = e_d, sigma = Top1 after ReLU.

    Returns (W_E*, W_D*, gt, activation spec). The code law is chosen so that M_d = 1 exactly: S with
    (1 - S) S = 1/2 has no solution, so the coefficients' second moment is scaled instead (c_min = 0, beta = b with
    2 b^2 (1 - S) S = 1 at S = 1/2, i.e. b = sqrt(2)).
    """
    W_E = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    W_D = torch.tensor([[0.5, 0.0], [0.5, 0.0]], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    return W_E, W_D, GroundTruth(eye, eye, Coefficients(2, 0.5, 0.0, 2 ** 0.5)), "relu>topk:1"


def random_partition(n: int, n_q: int, n_poly: int, generator: torch.Generator, n_mono: int | None = None) -> Tensor:
    """A random partition pattern: assign (n,) long, the latent of each feature.

    ``n_poly`` polysemantic latents share n - n_mono features (at least two each, round-robin), ``n_mono`` latents
    get one feature each (default: all features left after two per polysemantic latent), the remaining
    n_q - n_poly - n_mono latents are dead.
    """
    n_mono = n - 2 * n_poly if n_mono is None else n_mono
    if n_poly < 0 or n_mono < 0 or n - n_mono < 2 * n_poly or n_poly + n_mono > n_q or (n_poly == 0 and n_mono != n):
        raise ValueError(f"cannot place {n_poly} polysemantic and {n_mono} monosemantic latents with n={n} "
                         f"features and n_q={n_q} latents")
    perm = torch.randperm(n, generator=generator)
    assign = torch.empty(n, dtype=torch.long)
    n_shared = n - n_mono
    assign[perm[:n_shared]] = torch.arange(n_shared) % max(n_poly, 1)
    assign[perm[n_shared:]] = n_poly + torch.arange(n_mono)
    return assign


def realize_relu(gt: GroundTruth, assign: Tensor, n_q: int, targets: Tensor | None = None,
                 margin: float = 0.05) -> Tensor | None:
    """An encoder W_E (n_q, n_p) whose ReLU pattern is the partition ``assign``, or None if none exists.

    For each latent i, a linear programme finds a row w with <w, w_p^d> >= 1 for d in F_i (or = targets[d]
    when given) and <w, w_p^e> <= -margin for every other feature e, minimising |w|_1. A dead latent whose row
    cannot keep every feature strictly negative gets w = 0 (dead, but on the region's boundary).
    """
    Wp = gt.W_p.double().numpy()
    n_p = Wp.shape[0]
    W_E = torch.zeros(n_q, n_p, dtype=torch.float64)
    for i in range(n_q):
        members = (assign == i).nonzero().flatten().numpy()
        others = np.setdiff1d(np.arange(gt.n), members)
        # variables: w = u - v with u, v >= 0 (so |w|_1 = sum(u + v))
        A_ub = np.vstack([np.hstack([Wp[:, others].T, -Wp[:, others].T])] +
                         ([] if targets is not None else [np.hstack([-Wp[:, members].T, Wp[:, members].T])]))
        b_ub = np.concatenate([-margin * np.ones(len(others))] + ([] if targets is not None else [-np.ones(len(members))]))
        has_eq = targets is not None and len(members) > 0
        A_eq = np.hstack([Wp[:, members].T, -Wp[:, members].T]) if has_eq else None
        b_eq = targets[members].double().numpy() if has_eq else None
        res = linprog(np.ones(2 * n_p), A_ub=A_ub if len(A_ub) else None, b_ub=b_ub if len(b_ub) else None,
                      A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if res.status != 0:
            if len(members) == 0:
                continue
            return None
        W_E[i] = torch.from_numpy(res.x[:n_p] - res.x[n_p:])
    return W_E


def paper_decoder(W_E: Tensor, gt: GroundTruth, assign: Tensor) -> Tensor:
    """The paper's Theorem 3.6 decoder: W_D^i = sum_{d in F_i} M_d z_di w_r^d / sum_{d in F_i} M_d z_di^2, 0 if dead."""
    Z = W_E @ gt.W_p.to(W_E)                                      # (n_q, n): z_di
    M = gt.M_d().to(W_E)
    W_D = torch.zeros(gt.n_r, W_E.shape[0], dtype=W_E.dtype)
    for i in assign.unique():
        F = assign == i
        z = Z[i, F]
        W_D[:, i] = (gt.W_r.to(W_E)[:, F] * (M[F] * z)).sum(1) / (M[F] * z ** 2).sum()
    return W_D


def rank_one_targets(gt: GroundTruth, assign: Tensor) -> tuple[Tensor, Tensor]:
    """For each live latent: u_i, the top left singular vector of [sqrt(M_d) w_r^d]_{d in F_i} (sign: sum > 0), and
    the activations z_d = <u_i, w_r^d> it must give its features. Returns (U (n_r, n_q'), z (n,)).

    Then W_D^i = u_i and <w_E^i, w_p^d> = z_d make both block gradients vanish (see the spurious-minima chapter).
    """
    M = gt.M_d().double()
    Wr = gt.W_r.double()
    z = torch.zeros(gt.n, dtype=torch.float64)
    U = torch.zeros(gt.n_r, int(assign.max()) + 1, dtype=torch.float64)
    for i in assign.unique():
        F = assign == i
        u = torch.linalg.svd(Wr[:, F] * M[F].sqrt(), full_matrices=False)[0][:, 0]
        u = u if (u @ Wr[:, F]).sum() > 0 else -u
        U[:, i], z[F] = u, u @ Wr[:, F]
    return U, z


def rank_one_loss(gt: GroundTruth, groups: list[list[int]]) -> float:
    """The lowest L~ over all (W_D, activations) with this partition of features into latents:
    sum over groups of ||B||_F^2 - s_1(B)^2 with B = [sqrt(M_d) w_r^d]_{d in group} (Eckart-Young).

    It is the loss of :func:`rank_one_solution` whenever that is realizable.
    """
    M, W_r = gt.M_d().double(), gt.W_r.double()
    total = 0.0
    for group in groups:
        B = W_r[:, group] * M[group].sqrt()
        total += float((B ** 2).sum() - torch.linalg.svdvals(B)[0] ** 2)
    return total


def rank_one_solution(gt: GroundTruth, assign: Tensor, n_q: int, margin: float = 0.05):
    """A partial minimum of L~ (ReLU) with partition pattern ``assign``: (W_E, W_D), or None when not realizable
    (some z_d <= 0, or no encoder row reaches the targets while keeping the other features off)."""
    U, z = rank_one_targets(gt, assign)
    if (z <= 0).any():
        return None
    W_E = realize_relu(gt, assign, n_q, targets=z, margin=margin)
    if W_E is None:
        return None
    W_D = torch.zeros(gt.n_r, n_q, dtype=torch.float64)
    W_D[:, :U.shape[1]] = U
    return W_E, W_D


def partial_minimality(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, n_dirs: int = 200,
                       eps: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """Probe both blocks: random perturbations of size ``eps`` of W_E (kept only if the pattern is unchanged) and of
    W_D; report the largest decrease of L~ found in each block (<= 0 up to rounding at a partial minimum)."""
    g = torch.Generator().manual_seed(seed)
    F = pattern(W_E, sigma, gt.W_p)
    f0 = tilde_loss(W_E, W_D, gt, sigma).item()
    drop_E = drop_D = float("-inf")
    kept = 0
    for _ in range(n_dirs):
        dE = torch.randn(W_E.shape, generator=g, dtype=W_E.dtype)
        dD = torch.randn(W_D.shape, generator=g, dtype=W_D.dtype)
        E = W_E + eps * dE / dE.norm()
        if torch.equal(pattern(E, sigma, gt.W_p), F):
            kept += 1
            drop_E = max(drop_E, f0 - tilde_loss(E, W_D, gt, sigma).item())
        drop_D = max(drop_D, f0 - tilde_loss(W_E, W_D + eps * dD / dD.norm(), gt, sigma).item())
    gE, gD = block_gradients(W_E, W_D, gt, sigma)
    return {"loss": f0, "grad_E": gE.norm().item(), "grad_D": gD.norm().item(), "max_drop_E": drop_E,
            "max_drop_D": drop_D, "directions_in_region": kept}


def descend(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, steps: int = 2000,
            lr: float = 0.05) -> tuple[Tensor, Tensor, list[float]]:
    """Full-batch gradient descent (Adam) on L~ itself from (W_E, W_D); returns the final blocks and loss history."""
    E, D = W_E.clone().requires_grad_(True), W_D.clone().requires_grad_(True)
    opt = torch.optim.Adam([E, D], lr=lr)
    hist = []
    for _ in range(steps):
        loss = tilde_loss(E, D, gt, sigma)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
    return E.detach(), D.detach(), hist


def compare_constructions(gt: GroundTruth, assign: Tensor, n_q: int, sigma: nn.Module, n_dirs: int = 100) -> dict:
    """Theorem 3.6's construction against :func:`rank_one_solution` on one partition pattern (ReLU).

    Returns a flat dict: realizability, the paper's construction (loss, both gradient norms, the largest loss
    decrease found by moving W_E alone), whether every rank-one activation is positive, and, when the rank-one
    construction applies, its loss, gradients, probe results, predicted loss and the largest gradient entry of a
    dead latent (``dead_grad``, exactly 0 at a partial minimum).
    """
    W_E = realize_relu(gt, assign, n_q)
    if W_E is None:
        return {"realizable": False}
    target = torch.nn.functional.one_hot(assign, n_q).T.bool()
    if not torch.equal(pattern(W_E, sigma, gt.W_p), target):
        raise RuntimeError("the linear programme's encoder does not realize the partition")
    paper = partial_minimality(W_E, paper_decoder(W_E, gt, assign), gt, sigma, n_dirs=n_dirs // 2)
    row = {"realizable": True, "paper L~": paper["loss"], "paper |grad W_E|": paper["grad_E"],
           "paper |grad W_D|": paper["grad_D"], "paper max drop (W_E)": paper["max_drop_E"],
           "all z > 0": bool((rank_one_targets(gt, assign)[1] > 0).all())}
    sol = rank_one_solution(gt, assign, n_q)
    if sol is None:
        return row
    ours = partial_minimality(*sol, gt, sigma, n_dirs=n_dirs)
    dead = torch.bincount(assign, minlength=n_q) == 0
    gE, gD = block_gradients(*sol, gt, sigma)
    groups = [(assign == i).nonzero().flatten().tolist() for i in assign.unique()]
    return row | {"ours L~": ours["loss"], "ours |grad W_E|": ours["grad_E"], "ours |grad W_D|": ours["grad_D"],
                  "ours max drop (W_E)": ours["max_drop_E"], "ours max drop (W_D)": ours["max_drop_D"],
                  "directions kept in region": ours["directions_in_region"],
                  "predicted L~": rank_one_loss(gt, groups),
                  "dead grad": max(gE[dead].abs().max().item(), gD[:, dead].abs().max().item()) if dead.any() else 0.0}
