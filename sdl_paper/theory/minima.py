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

from ..data.ground_truth import Coefficients, GroundTruth
from .regions import block_gradients, exact_decoder, pattern, pattern_counts, tilde_loss


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


def two_feature_coefficients(M1: float, M2: float) -> Coefficients:
    """A code law on two features with exactly M_d = (M1, M2) (c_min = 0).

    With p_d = 1 - S_d, M_1 = 2 beta^2 p_1 (1 - p_2) and M_2 = 2 beta^2 p_2 (1 - p_1); p_1 = 1/3 and
    p_2 = r / (2 + r) (r = M2 / M1) give the ratio, and beta sets the scale.
    """
    if M1 <= 0 or M2 <= 0:
        raise ValueError(f"need M1, M2 > 0, got {M1}, {M2}")
    r = M2 / M1
    p1, p2 = 1 / 3, r / (2 + r)
    beta = (M1 / (2 * p1 * (1 - p2))) ** 0.5
    return Coefficients(2, torch.tensor([1 - p1, 1 - p2], dtype=torch.float64), 0.0, beta)


def example_3_5(M1: float = 1.0, M2: float = 1.0) -> tuple[Tensor, Tensor, GroundTruth, str]:
    """The paper's Example 3.5: n = n_p = n_q = n_r = 2, w_p^d = w_r^d = e_d, sigma = Top1 after ReLU, latent 1
    fires for both features, latent 2 is dead; the paper has M_1 = M_2 = 1 (the defaults).

    Returns (W_E*, W_D*, gt, activation spec) with W_E* = [[1, 1], [0, 0]], W_D* = [[1/2, 0], [1/2, 0]] (the
    least-squares decoder when M_1 = M_2; with unequal weights W_D* is the paper's formula, not a partial minimum).
    """
    W_E = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    W_D = torch.tensor([[M1 / (M1 + M2), 0.0], [M2 / (M1 + M2), 0.0]], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    return W_E, W_D, GroundTruth(eye, eye, two_feature_coefficients(M1, M2)), "relu>topk:1"


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


def group_matrix(gt: GroundTruth, group) -> Tensor:
    """B = [sqrt(M_d) w_r^d]_{d in group}, shape (n_r, |group|): L~ of a latent firing exactly for ``group`` is
    ||B - u y^T||_F^2 with u its decoder column and y_d = sqrt(M_d) z_d its weighted activations."""
    group = torch.as_tensor(group, dtype=torch.long)
    return gt.W_r.double()[:, group] * gt.M_d().double()[group].sqrt()


def group_spectrum(gt: GroundTruth, group) -> dict:
    """The eigen-decomposition of B^T B (B from :func:`group_matrix`), which decides the group's partial minima.

    Returns ``eigenvalues`` (ascending, (k,)), ``eigenvectors`` (columns, (k, k), each signed to have a positive
    sum), ``signedness`` (k,): min_d v_d of each signed eigenvector, > 0 iff it is strictly single-signed, and
    ``gap``: the smallest distance between two eigenvalues (inf for k = 1); when gap > 0 the eigenvectors are
    unique up to sign, so ``signedness`` covers every eigenvector.
    """
    B = group_matrix(gt, group)
    lam, V = torch.linalg.eigh(B.T @ B)
    V = V * torch.where(V.sum(0) >= 0, 1.0, -1.0)
    gap = float(lam.diff().min()) if len(lam) > 1 else float("inf")
    return {"eigenvalues": lam, "eigenvectors": V, "signedness": V.min(0).values, "gap": gap}


def eigen_targets(gt: GroundTruth, assign: Tensor, choice: str = "positive", tol: float = 1e-9) -> dict:
    """Decoder columns and activations that make both block gradients of a partition pattern vanish.

    For each live latent i with group G, pick an eigenvector y of B^T B (eigenvalue lam): ``choice="top"`` the
    top one (the best rank-one approximation of B, whatever its signs), ``"positive"`` the one with the largest
    eigenvalue among those with every entry > ``tol`` (strictly single-signed). Then u_i = B y / lam with
    ||y||^2 = lam (so ||u_i|| = 1) and z_d = <u_i, w_r^d> = y_d / sqrt(M_d).

    Returns ``U`` (n_r, n_groups), ``z`` (n,), ``rank`` (n_groups,) the chosen eigenvalue's rank (0 = top; -1 when
    ``"positive"`` found none), ``loss`` the predicted L~ = sum_G ||B_G||_F^2 - lam_G, and ``ok`` (every z > 0).
    """
    if choice not in ("top", "positive"):
        raise ValueError(f"choice must be 'top' or 'positive', got {choice!r}")
    M = gt.M_d().double()
    n_groups = int(assign.max()) + 1
    z = torch.zeros(gt.n, dtype=torch.float64)
    U = torch.zeros(gt.n_r, n_groups, dtype=torch.float64)
    rank = torch.full((n_groups,), -1, dtype=torch.long)
    loss = 0.0
    for i in assign.unique().tolist():
        G = (assign == i).nonzero().flatten()
        spec = group_spectrum(gt, G)
        order = torch.argsort(spec["eigenvalues"], descending=True)
        ok = order.tolist() if choice == "top" else [k for k in order.tolist() if spec["signedness"][k] > tol]
        k = int(ok[0]) if len(ok) else int(order[0])
        lam = spec["eigenvalues"][k]
        y = spec["eigenvectors"][:, k] * lam.sqrt()
        U[:, i] = group_matrix(gt, G) @ y / lam
        z[G] = y / M[G].sqrt()
        rank[i] = int((order == k).nonzero()) if len(ok) else -1
        loss += float((group_matrix(gt, G) ** 2).sum() - lam)
    return {"U": U, "z": z, "rank": rank, "loss": loss, "ok": bool((z > 0).all()) and bool((rank >= 0).all())}


def rank_one_loss(gt: GroundTruth, groups: list[list[int]]) -> float:
    """The lowest L~ over all (W_D, activations) with this partition of features into latents:
    sum over groups of ||B||_F^2 - s_1(B)^2 with B = [sqrt(M_d) w_r^d]_{d in group} (Eckart-Young).

    It is the loss of :func:`eigen_solution` with ``choice="top"`` whenever that is realizable (all z > 0).
    """
    M, W_r = gt.M_d().double(), gt.W_r.double()
    total = 0.0
    for group in groups:
        B = W_r[:, group] * M[group].sqrt()
        total += float((B ** 2).sum() - torch.linalg.svdvals(B)[0] ** 2)
    return total


def eigen_solution(gt: GroundTruth, assign: Tensor, n_q: int, choice: str = "positive", margin: float = 0.05):
    """A partial minimum of L~ (ReLU) with partition pattern ``assign``, from :func:`eigen_targets`: (W_E, W_D), or
    None when some chosen activation is not positive or no encoder reaches them while keeping the other features off.
    """
    t = eigen_targets(gt, assign, choice)
    if not t["ok"]:
        return None
    W_E = realize_relu(gt, assign, n_q, targets=t["z"], margin=margin)
    if W_E is None:
        return None
    W_D = torch.zeros(gt.n_r, n_q, dtype=torch.float64)
    W_D[:, :t["U"].shape[1]] = t["U"]
    return W_E, W_D


def partial_minimality(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, n_dirs: int = 200,
                       scales: tuple[float, ...] = (1e-3,), seed: int = 0) -> dict[str, float]:
    """Probe both blocks of a candidate partial minimum: random moves of W_E (kept only if the pattern, i.e. the
    region, is unchanged) and of W_D, of each length in ``scales``; report the largest decrease of L~ found in each
    block (<= 0 up to rounding at a block-wise minimum), the number of W_E moves kept, and both gradient norms."""
    g = torch.Generator().manual_seed(seed)
    F = pattern(W_E, sigma, gt.W_p)
    f0 = tilde_loss(W_E, W_D, gt, sigma).item()
    drop_E = drop_D = float("-inf")
    kept = 0
    for _ in range(n_dirs):
        dE = torch.randn(W_E.shape, generator=g, dtype=W_E.dtype)
        dD = torch.randn(W_D.shape, generator=g, dtype=W_D.dtype)
        for eps in scales:
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


def compare_constructions(gt: GroundTruth, assign: Tensor, n_q: int, sigma: nn.Module, n_dirs: int = 100,
                          scales: tuple[float, ...] = (1e-3, 1e-1), generator: torch.Generator | None = None) -> dict:
    """Theorem 3.6's construction against :func:`eigen_solution` on one partition pattern (ReLU).

    The paper's construction starts from *any* encoder realizing the pattern: with ``generator`` given, one that
    gives each feature a random activation z_d ~ U(0.5, 1.5) on its latent, else the linear programme's (all
    z_d = 1 when the constraints are active). Returns a flat dict: realizability; the paper's construction (loss, both gradient norms, the largest loss
    decrease found by moving W_E alone); ``signedness``: min over groups of the largest min_d v_d over the group's
    eigenvectors (> 0 iff every group has a strictly single-signed eigenvector), ``gap``: the smallest eigengap
    of any group, whether every group has a strictly single-signed eigenvector and whether it is the top one; and, when the eigenvector construction applies, its loss, gradients, probe results,
    predicted loss, the rank of the eigenvector used in the group that needed the lowest one (0 = top), and the
    largest gradient entry of a dead latent (``dead grad``, exactly 0 at a partial minimum).
    """
    z0 = None if generator is None else 0.5 + torch.rand(gt.n, generator=generator, dtype=torch.float64)
    W_E = realize_relu(gt, assign, n_q, targets=z0)
    if W_E is None:
        return {"realizable": False}
    target = torch.nn.functional.one_hot(assign, n_q).T.bool()
    if not torch.equal(pattern(W_E, sigma, gt.W_p), target):
        raise RuntimeError("the linear programme's encoder does not realize the partition")
    paper = partial_minimality(W_E, paper_decoder(W_E, gt, assign), gt, sigma, n_dirs=n_dirs // 2)
    pos = eigen_targets(gt, assign, "positive")
    specs = [group_spectrum(gt, (assign == i).nonzero().flatten()) for i in assign.unique().tolist()]
    row = {"signedness": min(float(sp["signedness"].max()) for sp in specs),
           "gap": min(sp["gap"] for sp in specs), "realizable": True, "paper L~": paper["loss"], "paper |grad W_E|": paper["grad_E"],
           "paper |grad W_D|": paper["grad_D"], "paper max drop (W_E)": paper["max_drop_E"],
           "single-signed": pos["ok"], "top positive": pos["ok"] and bool((pos["rank"] == 0).all())}
    sol = eigen_solution(gt, assign, n_q, "positive")
    if sol is None:
        return row
    ours = partial_minimality(*sol, gt, sigma, n_dirs=n_dirs, scales=scales)
    dead = torch.bincount(assign, minlength=n_q) == 0
    gE, gD = block_gradients(*sol, gt, sigma)
    return row | {"ours L~": ours["loss"], "ours |grad W_E|": ours["grad_E"], "ours |grad W_D|": ours["grad_D"],
                  "ours max drop (W_E)": ours["max_drop_E"], "ours max drop (W_D)": ours["max_drop_D"],
                  "directions kept in region": ours["directions_in_region"], "predicted L~": pos["loss"],
                  "eigenvector rank": int(pos["rank"].max()),
                  "dead grad": max(gE[dead].abs().max().item(), gD[:, dead].abs().max().item()) if dead.any() else 0.0}


def descend_batch(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, steps: int = 2000,
                  lr: float = 0.05) -> tuple[Tensor, Tensor, Tensor]:
    """Full-batch Adam on L~ for R independent runs at once: W_E (R, n_q, n_p), W_D (R, n_r, n_q).

    Adam acts entry by entry and the runs' losses are summed, so each run follows exactly its own Adam
    trajectory. Returns the final blocks and the final losses (R,).
    """
    E, D = W_E.clone().requires_grad_(True), W_D.clone().requires_grad_(True)
    opt = torch.optim.Adam([E, D], lr=lr)
    Wp, Wr, M = gt.W_p.to(W_E), gt.W_r.to(W_E), gt.M_d().to(W_E)

    def losses():
        A = sigma((E @ Wp).mT).mT                                  # (R, n_q, n): sigma(W_E w_p^d)
        return (M * (Wr - D @ A).pow(2).sum(1)).sum(-1)
    for _ in range(steps):
        opt.zero_grad()
        losses().sum().backward()
        opt.step()
    with torch.no_grad():
        return E.detach(), D.detach(), losses()


def polish_partition(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, iters: int = 100) -> dict:
    """Exact alternating block minimisation inside the region of W_E (Gorski et al. 2007's ACS), for patterns in
    which each feature fires at most one latent (ReLU partitions, Top1).

    Each iteration solves the decoder block exactly (:func:`sdl_paper.theory.regions.exact_decoder`), then moves each live
    row w_E^i towards its exact block minimiser (activations z_d = <u_i, w_r^d> / ||u_i||^2 on its features, by the
    smallest change of the row), halving the step until the pattern is unchanged. L~ never increases and the
    region is never left. Returns ``W_E``, ``W_D``, ``loss`` (per iteration), ``step`` (last accepted step length;
    0 when stuck at the region's boundary) and ``min_ratio``: the smallest min_d z_d / max_d z_d over live latents.
    """
    F = pattern(W_E, sigma, gt.W_p)
    if (F.sum(0) > 1).any():
        raise ValueError("polish_partition needs each feature to fire at most one latent")
    Wp, Wr = gt.W_p.to(W_E), gt.W_r.to(W_E)
    live = [i for i in range(F.shape[0]) if F[i].any()]
    hist, t = [], 1.0
    for _ in range(iters):
        W_D = exact_decoder(W_E, gt, sigma)
        delta = torch.zeros_like(W_E)
        for i in live:
            P = Wp[:, F[i]]
            u = W_D[:, i]
            z_star = (u @ Wr[:, F[i]]) / (u @ u)
            delta[i] = P @ torch.linalg.solve(P.T @ P, z_star - W_E[i] @ P)
        t = 1.0
        while t > 1e-12 and not torch.equal(pattern(W_E + t * delta, sigma, gt.W_p), F):
            t /= 2
        t = t if t > 1e-12 else 0.0
        W_E = W_E + t * delta
        hist.append(tilde_loss(W_E, W_D, gt, sigma).item())
    W_D = exact_decoder(W_E, gt, sigma)
    Z = W_E @ Wp
    ratio = min((float(Z[i, F[i]].min() / Z[i, F[i]].max()) for i in live), default=1.0)
    return {"W_E": W_E, "W_D": W_D, "loss": hist, "step": t, "min_ratio": ratio}



def eigen_residuals(W_E: Tensor, gt: GroundTruth, sigma: nn.Module) -> list[dict]:
    """For each polysemantic latent of W_E (pattern with each feature on at most one latent): how far its weighted
    activations y_d = sqrt(M_d) <w_E^i, w_p^d> (d in F_i) are from an eigenvector of B^T B, and which one.

    Returns one dict per polysemantic latent: ``residual`` = ||B^T B y - rho y|| / ||B^T B y|| with rho the
    Rayleigh quotient (0 iff y is an eigenvector), ``rank`` of the nearest eigenvalue (0 = top) and ``size``.
    """
    F = pattern(W_E, sigma, gt.W_p)
    Z = W_E.double() @ gt.W_p.double()
    out = []
    for i in (F.sum(1) >= 2).nonzero().flatten().tolist():
        G = F[i].nonzero().flatten()
        B = group_matrix(gt, G)
        y = gt.M_d().double()[G].sqrt() * Z[i, G]
        Ay = B.T @ B @ y
        rho = (y @ Ay) / (y @ y)
        lam = torch.linalg.eigvalsh(B.T @ B).flip(0)
        out.append({"residual": float((Ay - rho * y).norm() / Ay.norm()),
                    "rank": int((lam - rho).abs().argmin()), "size": len(G)})
    return out


def certify_endpoint(W_E: Tensor, W_D: Tensor, gt: GroundTruth, sigma: nn.Module, polish_iters: int = 50,
                     n_dirs: int = 30, tol: float = 1e-9) -> dict:
    """Is a training endpoint (W_E, W_D) at, or next to, a partial minimum of L~ on its region?

    Polishes it by exact alternating block minimisation inside its region (:func:`polish_partition`), then tests
    the polished point: both block gradients below ``tol`` and no random move of either block (lengths 1e-3 and
    0.1, W_E moves kept only inside the region) lowering L~ by more than 1e-12 (``certified``). Also returns the
    endpoint's pattern counts, its largest dead-latent gradient entry (``dead grad``), the loss before and after
    polishing, the last accepted polishing step (``polish step``, 0 when polishing was stopped by the region's
    edge) and the largest eigenvector residual of a polysemantic group at the polished point.
    """
    F = pattern(W_E, sigma, gt.W_p)
    dead = F.sum(1) == 0
    gE, gD = block_gradients(W_E, W_D, gt, sigma)
    row = {"L~ (end)": tilde_loss(W_E, W_D, gt, sigma).item(), **{k: v for k, v in pattern_counts(F).items()},
           "dead grad": max(gE[dead].abs().max().item(), gD[:, dead].abs().max().item()) if dead.any() else 0.0}
    pol = polish_partition(W_E, W_D, gt, sigma, iters=polish_iters)
    pm = partial_minimality(pol["W_E"], pol["W_D"], gt, sigma, n_dirs=n_dirs, scales=(1e-3, 1e-1))
    res = eigen_residuals(pol["W_E"], gt, sigma)
    return row | {"L~ (polished)": pm["loss"], "|grad| (polished)": max(pm["grad_E"], pm["grad_D"]),
                  "max drop": max(pm["max_drop_E"], pm["max_drop_D"]), "moves kept": pm["directions_in_region"],
                  "polish step": pol["step"],
                  "certified": max(pm["grad_E"], pm["grad_D"]) < tol and pm["directions_in_region"] > 0
                  and max(pm["max_drop_E"], pm["max_drop_D"]) <= 1e-12,
                  "eigen residual": max((r["residual"] for r in res), default=0.0),
                  "top eigenvector": all(r["rank"] == 0 for r in res)}
