"""Training an SDL model on a ground-truth view: one loop for every instantiation.

A minimal, deterministic Adam loop on L_SDL (plus an optional L1 penalty on x_q). Batches are drawn fresh from a
seeded generator each step, so no dataset is materialised.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from .progress import bar

from ..sources.ground_truth import GroundTruth
from ..theory.framework import SDL, sdl_loss
from .trainer import TrainingDiverged  # noqa: F401 (one exception for both loops)


@dataclass
class History:
    """Per-step training records (lists of floats, one entry per logged step)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)   # batch L_SDL (reconstruction part only)


def fit(model: SDL, gt: GroundTruth, steps: int, batch_size: int = 256, lr: float = 1e-3, l1: float = 0.0,
        seed: int = 0, device: torch.device | str = "cpu", log_every: int = 10, progress: bool | None = None,
        desc: str = "train") -> History:
    """Minimise L_SDL(W_D, W_E) + l1 * E||x_q||_1 with Adam; returns the loss history.

    Raises:
        TrainingDiverged: at the first step whose loss or weights are not finite.
    """
    if steps < 1 or batch_size < 1 or not lr > 0 or l1 < 0:
        raise ValueError(f"need steps >= 1, batch_size >= 1, lr > 0, l1 >= 0; got {steps}, {batch_size}, {lr}, {l1}")
    device = torch.device(device)
    model.to(device)
    W_p, W_r = gt.W_p.to(device), gt.W_r.to(device)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = History()
    steps_bar = bar(range(steps), desc=desc, show=progress)
    for step in steps_bar:
        x = gt.coefficients.sample(batch_size, g, dtype=W_p.dtype).to(device)     # (B, n)
        x_p, x_r = x @ W_p.T, x @ W_r.T                                           # (B, n_p), (B, n_r)
        x_hat, x_q = model(x_p)
        rec = (x_r - x_hat).pow(2).sum(-1).mean()
        loss = rec + l1 * x_q.abs().sum(-1).mean() if l1 else rec
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"{desc}: loss is {loss.item()} at step {step} (lr={lr}); lower lr or check inputs")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            hist.step.append(step)
            hist.loss.append(rec.item())
            steps_bar.set_postfix(loss=f"{rec.item():.4g}", refresh=False)
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingDiverged(f"{desc}: parameter {name} is not finite after {steps} steps (lr={lr})")
    return hist


@torch.no_grad()
def evaluate(model: SDL, gt: GroundTruth, n_samples: int = 20000, seed: int = 1) -> dict[str, float]:
    """Monte Carlo L_SDL, the zero-dictionary baseline E||x_r||^2 and explained variance (mean subtracted)."""
    device = model.W_E.device
    g = torch.Generator().manual_seed(seed)
    _, x_p, x_r = gt.sample(n_samples, g)
    x_p, x_r = x_p.to(device), x_r.to(device)
    loss = sdl_loss(model, x_p, x_r).item()
    baseline = x_r.pow(2).sum(-1).mean().item()
    total_var = (x_r - x_r.mean(0)).pow(2).sum(-1).mean().item()
    return {"L_SDL": loss, "baseline": baseline, "explained_variance": 1 - loss / total_var}
