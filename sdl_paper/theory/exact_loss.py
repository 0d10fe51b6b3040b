"""L_SDL computed exactly, for a data law with finitely many inputs (used to test Theorem 3.2 on L_SDL itself).

The law ("binary features", ours, allowed by the paper's assumptions): each of the n features is on independently
with probability p, at magnitude 1, so x ranges over the 2^n vectors of {0, 1}^n and
L_SDL = sum_x P(x) ||W_r x - W_D sigma(W_E W_p x)||^2 is a finite sum. Its one-feature part is L~ with
M_d = p (1 - p)^(n - 1) for every d. W_E is (n_q, n_p), W_D is (n_r, n_q), W_p (n_p, n), W_r (n_r, n).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .regions import line_patterns, line_radius, pattern, second_differences

MAX_FEATURES = 16  # 2^16 inputs: the enumeration stays small


def binary_codes(n: int) -> Tensor:
    """Every code of {0, 1}^n as rows, (2^n, n) float64, ordered as the binary numbers 0 .. 2^n - 1."""
    if not 1 <= n <= MAX_FEATURES:
        raise ValueError(f"n = {n}: the exact loss enumerates 2^n inputs; allowed 1 <= n <= {MAX_FEATURES}")
    bits = torch.arange(2 ** n)[:, None] >> torch.arange(n)
    return (bits & 1).double()


def binary_law(n: int, p: float) -> tuple[Tensor, Tensor]:
    """(codes (2^n, n), probabilities (2^n,)) of the binary-features law with firing probability ``p``."""
    if not 0 < p < 1:
        raise ValueError(f"p = {p}: the firing probability must lie in (0, 1)")
    X = binary_codes(n)
    K = X.sum(1)
    return X, p ** K * (1 - p) ** (n - K)


def line_sdl_losses(W_E: Tensor, W_D: Tensor, W_p: Tensor, W_r: Tensor, sigma: nn.Module, p: float,
                    ts: Tensor, dE: Tensor) -> dict[str, Tensor]:
    """Exact losses along the encoder line W_E + t dE, t in ``ts`` (T,), under the binary-features law.

    Returns ``L_SDL`` (T,), ``L_tilde`` (T,) (its one-feature part) and ``masks`` (T, 2^n, n_q), bool: which
    latents fire on each input (row-wise activations only: every input is encoded on its own).
    """
    X, P = binary_law(W_p.shape[1], p)
    E = W_E + ts.reshape(-1, 1, 1).to(W_E) * dE                              # (T, n_q, n_p)
    Z = (X @ W_p.T.double()) @ E.transpose(1, 2)                             # (T, 2^n, n_q)
    A = sigma(Z.reshape(-1, Z.shape[-1])).reshape(Z.shape)
    R = (X @ W_r.T.double()) - A @ W_D.T.double()                            # (T, 2^n, n_r)
    cost = P * R.pow(2).sum(-1)                                              # (T, 2^n)
    one = X.sum(1) == 1
    return {"L_SDL": cost.sum(1), "L_tilde": cost[:, one].sum(1), "masks": A != 0}


def region_line_search(W_E: Tensor, W_D: Tensor, W_p: Tensor, W_r: Tensor, sigma: nn.Module, p: float,
                       n_lines: int, generator: torch.Generator, points: int = 201) -> dict:
    """Random encoder lines cut to the region of W_E; the most negative second difference of the exact L_SDL.

    Each line W_E + t dE (dE of unit norm) is cut to [-r, r], r = :func:`~sdl_paper.theory.regions.line_radius`,
    and sampled at ``points`` points; the pattern (one feature at a time) is re-checked at every point. Returns
    ``sd_sdl`` (most negative second difference of L_SDL), ``sd_tilde`` (of its one-feature part, on the same
    lines), ``lines`` (lines with a segment), ``pattern_kept`` (True when no sampled point left the region),
    ``bend_at_switch`` (True when the worst bend of L_SDL has a multi-feature input changing its latents between
    its neighbouring points), and ``line`` = (ts, L_SDL values) of the worst line.
    """
    F0 = pattern(W_E, sigma, W_p)
    best = {"sd_sdl": float("inf"), "sd_tilde": float("inf"), "lines": 0, "pattern_kept": True,
            "bend_at_switch": False, "line": None}
    for _ in range(n_lines):
        d = torch.randn(W_E.shape, generator=generator, dtype=torch.float64)
        d = d / d.norm()
        r = line_radius(W_E, d, sigma, W_p)
        if r <= 0:
            continue
        ts = torch.linspace(-r, r, points, dtype=torch.float64)
        out = line_sdl_losses(W_E, W_D, W_p, W_r, sigma, p, ts, d)
        kept = bool((line_patterns(W_E, d, sigma, W_p, ts) == F0).all())
        sd, sd_t = second_differences(out["L_SDL"]), second_differences(out["L_tilde"])
        best["lines"] += 1
        best["pattern_kept"] &= kept
        best["sd_tilde"] = min(best["sd_tilde"], sd_t.min().item())
        if sd.min().item() < best["sd_sdl"]:
            i = int(sd.argmin())                                             # bend at ts[i + 1]
            switch = (out["masks"][i] != out["masks"][i + 2]).any().item()
            best.update(sd_sdl=sd.min().item(), bend_at_switch=bool(switch), line=(ts, out["L_SDL"]))
    return best
