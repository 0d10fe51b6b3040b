"""Pick the sparsity coefficient that reaches a target L0, the question every ReLU or JumpReLU SAE user asks.

``find_sparsity_coefficient(data, cfg, n_q, target_l0)``: short runs over a geometric grid of the method's
coefficient (``l1`` for relu and relu_dec, ``l0`` for jumprelu), trained as one batched run (one model per value,
the same seed), each model's L0 measured at the end on a sample of the data; the coefficient is interpolated in
log-log between the two values that bracket the target, then refined once on a finer grid between them.
"""
from __future__ import annotations

import math

import torch

from ..data.arrays import as_source
from ..model.config import Config
from ..model.dictionary import encode
from .loop import train

FIELDS = {"relu": "l1", "relu_dec": "l1", "jumprelu": "l0"}


def _l0s(data, cfg: Config, n_q: int, values: list[float], seed: int, device, n_samples: int) -> list[float]:
    """The final L0 of each value's run, on ``n_samples`` rows of the data (one batched run)."""
    field = FIELDS[cfg.method]
    state = train(data, cfg.replace(**{field: tuple(values)}), n_q, [seed] * len(values), device=device,
                  progress=False, desc=f"{field} sweep")
    x_p, _ = as_source(data).pool(n_samples, torch.Generator().manual_seed(seed + 1))
    params = {k: v.detach().cpu() for k, v in state.params.items()}
    with torch.no_grad():
        _, a = encode(params, x_p.float().cpu().expand(len(values), -1, -1).contiguous(), cfg)
    return (a != 0).float().sum(-1).mean(1).tolist()


def _interpolate(values: list[float], l0s: list[float], target: float) -> tuple[float, int, int] | None:
    """log-log interpolation between the neighbours (in the order of ``values``) whose L0s bracket ``target``."""
    for i in range(len(values) - 1):
        a, b = l0s[i], l0s[i + 1]
        if min(a, b) <= target <= max(a, b) and a > 0 and b > 0 and a != b:
            w = (math.log(target) - math.log(a)) / (math.log(b) - math.log(a))
            return math.exp(math.log(values[i]) + w * (math.log(values[i + 1]) - math.log(values[i]))), i, i + 1
    return None


def find_sparsity_coefficient(data, cfg: Config, n_q: int, target_l0: float, values=None, seed: int = 0,
                              device: str = "auto", n_samples: int = 4096) -> dict:
    """The coefficient reaching ``target_l0`` (see the module). ``cfg`` gives everything else (steps: keep them
    short, the same as the run you will train); ``values``: the first grid (default 1e-4 .. 10, 8 values).

    Returns ``coefficient`` (interpolated), ``tried`` (list of (value, L0) pairs, both rounds) and ``nearest``
    (the tried value whose L0 is nearest the target in log). Raises ValueError when no tried value brackets the
    target (the message gives the L0 range reached)."""
    if cfg.method not in FIELDS:
        raise ValueError(f"method {cfg.method!r} has no sparsity coefficient to tune; methods with one: "
                         f"{', '.join(FIELDS)} (TopK methods set L0 with k)")
    if not (isinstance(target_l0, (int, float)) and 0 < target_l0 < n_q):
        raise ValueError(f"target_l0={target_l0!r} must be a number in (0, n_q={n_q})")
    values = sorted(values) if values is not None else [10 ** e for e in torch.linspace(-4, 1, 8).tolist()]
    if len(values) < 2 or min(values) <= 0:
        raise ValueError(f"values={values!r} must hold at least two coefficients > 0")
    l0s = _l0s(data, cfg, n_q, values, seed, device, n_samples)
    tried = list(zip(values, l0s))
    hit = _interpolate(values, l0s, target_l0)
    if hit is None:
        raise ValueError(f"no coefficient in [{values[0]:.3g}, {values[-1]:.3g}] reaches L0 = {target_l0}: the L0s "
                         f"range over [{min(l0s):.3g}, {max(l0s):.3g}]; widen values=")
    _, i, j = hit
    finer = [math.exp(x) for x in torch.linspace(math.log(values[i]), math.log(values[j]), 6).tolist()[1:-1]]
    tried += list(zip(finer, _l0s(data, cfg, n_q, finer, seed, device, n_samples)))
    tried.sort()
    hit = _interpolate([v for v, _ in tried], [l for _, l in tried], target_l0) or hit
    nearest = min(tried, key=lambda p: abs(math.log(max(p[1], 1e-9) / target_l0)))
    return {"coefficient": hit[0], "tried": tried, "nearest": nearest}
