"""Controlled experiments on the training engine: sweeps with seeds batched into one run, per-step firing records,
and tidy result tables (pandas) for the experiment chapters.

A *case* is one setting (ground truth, Config, n_q); its seeds train together as one batched model (K = number of
seeds), so every seed of a case sees the same settings and its own data and initialisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor

from ..model import Config, encode, feature_pattern, fixed_views
from ..training import State, objective, to_device, train
from ..training.progress import bar


@dataclass
class Recorder:
    """A ``train`` callback: every step's firing mask (K, n_q), and every ``pattern_every`` steps the size |F_i| of
    each latent's activation pattern (K, n_q) plus the window-based dead mask."""

    gt: object
    cfg: Config
    pattern_every: int = 0
    fired: list[Tensor] = field(default_factory=list)
    pattern_steps: list[int] = field(default_factory=list)
    pattern_sizes: list[Tensor] = field(default_factory=list)

    def __call__(self, state: State, terms: dict) -> None:
        self.fired.append(terms["fired"].detach().cpu().clone())
        step = state.step - 1
        if self.pattern_every and (step % self.pattern_every == 0 or state.step == self.cfg.steps):
            self.pattern_steps.append(step)
            self.pattern_sizes.append(feature_pattern(state.params, self.gt, self.cfg).sum(-1).cpu())

    def firing(self) -> Tensor:
        """(steps, K, n_q) bool: did latent i of model k fire at that step."""
        return torch.stack(self.fired)


def run_cases(cases: dict, seeds: list[int], record_every: int = 0, progress: bool | None = None,
              device="cpu"):
    """Train every case ``{label: (gt, cfg, n_q)}`` with all ``seeds`` batched on ``device``; returns
    ``{label: (state, rec)}`` with each state moved back to the CPU for analysis."""
    out = {}
    for label, (gt, cfg, n_q) in bar(cases.items(), desc="cases", show=progress):
        rec = Recorder(gt, cfg, record_every)
        state = train(gt, cfg, n_q, seeds, progress=False, desc=str(label), callback=rec, device=device)
        to_device(state, "cpu")
        out[label] = (state, rec)
    return out


def dead_by_window(firing: Tensor, windows: list[int]) -> Tensor:
    """(len(windows), K) fraction of latents that did not fire in the last w steps of ``firing`` (steps, K, n_q)."""
    return torch.stack([(~firing[-w:].any(0)).float().mean(-1) for w in windows])


def tracked_frame(state: State, seeds: list[int] | None = None, **labels) -> pd.DataFrame:
    """The run's tracked metrics (``state.tracked``: ground-truth metrics, or any measure's) as a long table: one row
    per (step, model) with ``seed`` the model's index, or its seed when ``seeds`` are given, plus ``labels``."""
    rows = [{"step": t["step"], "seed": seeds[k] if seeds else k, **m, **labels} for t in state.tracked
            for k, m in enumerate(t["models"])]
    return pd.DataFrame(rows)


def history_frame(state: State, **labels) -> pd.DataFrame:
    """The batch-metric history (loss, L0, window-based dead fraction) as a long table."""
    rows = [{"step": h["step"], "seed": k, "loss": h["loss"][k], "L0": h["L0"][k], "window_dead": h["window_dead"][k], **labels}
            for h in state.history for k in range(len(h["loss"]))]
    return pd.DataFrame(rows)


@torch.no_grad()
def codes(params: dict[str, Tensor], gt, cfg: Config, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """(x (n, n_features), latent codes (K, n, n_q)) on one seeded evaluation set shared by all models."""
    x, x_p, _ = fixed_views(gt, params["W_E"].shape[0], n, seed)
    _, a = encode(params, x_p, cfg)
    return x, a


@torch.no_grad()
def ground_truth_params(gt, n_q: int, cfg: Config, seed: int = 0) -> dict[str, Tensor]:
    """The faithful dictionary, K = 1: one latent per ground-truth direction (W_E rows = w_p^d, W_D columns =
    w_r^d), padded to n_q latents with silent rows (zero encoder rows, random unit decoder columns)."""
    n = gt.n
    if n_q < n:
        raise ValueError(f"n_q={n_q} is below the number of features n={n}: no faithful dictionary")
    W_E = torch.zeros(1, n_q, gt.n_p)
    W_E[0, :n] = gt.W_p.T
    D = torch.randn(gt.n_r, n_q, generator=torch.Generator().manual_seed(seed))
    D[:, :n] = gt.W_r
    params = {"W_E": W_E} if cfg.tied else {"W_E": W_E, "W_D": (D / D.norm(dim=0, keepdim=True))[None]}
    if cfg.bias:
        params |= {"b_E": torch.zeros(1, n_q), "b_D": torch.zeros(1, gt.n_r)}
    return params | cfg.impl.init_params(1, n_q, cfg)


@torch.no_grad()
def objective_on(params: dict[str, Tensor], gt, cfg: Config, n: int = 20000, seed: int = 777) -> Tensor:
    """Per-model training objective (reconstruction + penalty, no AuxK), shape (K,), on one seeded evaluation set."""
    _, x_p, x_r = fixed_views(gt, params["W_E"].shape[0], n, seed)
    return objective(params, x_p, x_r, cfg)["total"]
