"""A SynthSAEBench-style world (Chanin and Garriga-Alonso 2026; SAELens's ``sae_lens.synthetic``), written here from
the benchmark's definitions, with no SAELens import: Zipfian firing probabilities, firing correlated through a
low-rank Gaussian copula, a forest of hierarchies whose children fire only with their parent (siblings mutually
exclusive, children's magnitudes scaled by their parent's), folded-normal magnitude noise around linearly spaced
means, nearly orthogonal unit feature vectors and a bias.

Feature indices are assigned level by level across the forest (roots first, then every root's children, ...), so
the hierarchies sit on the most frequent features; features beyond the forest belong to no tree. A batch: firing
mask from the copula at the probabilities corrected for the gating; magnitudes relu(mean + std N(0, 1)); per
level, children gated (or scaled by parent / parent mean) and one active sibling kept at random; relu; then
x_p = W_p x + b. ``SynthConfig()`` is the benchmark's 16k model; ``SynthConfig.reduced()`` a size for 2 CPU cores.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .arrays import Source


@dataclass(frozen=True)
class SynthConfig:
    """The generator's settings; defaults are SynthSAEBench-16k (v2: children scaled by their parent)."""

    n: int = 16384                  # features
    n_p: int = 768                  # hidden width
    p_max: float = 0.4              # Zipfian firing probabilities, feature 0 the most frequent
    p_min: float = 5e-4
    zipf_exponent: float = 0.5
    roots: int = 128                # hierarchy: trees, children per node, levels below the roots
    branching: int = 4
    depth: int = 3
    mutually_exclusive: bool = True
    scale_children_by_parent: bool = True
    mean_start: float = 5.0         # mean magnitudes, linearly from feature 0 to feature n - 1
    mean_end: float = 4.0
    std_mean: float = 0.5           # magnitude noise per feature: |std_mean + std_std N(0, 1)|
    std_std: float = 0.5
    correlation_rank: int = 25      # low-rank copula: factor N(0, scale^2), shape (n, rank)
    correlation_scale: float = 0.1
    orthogonalize_steps: int = 100  # Adam steps on the feature vectors' off-diagonal Gram
    orthogonalize_lr: float = 3e-4
    bias: float = 0.5               # norm of the bias added to every x_p
    seed: int = 42

    def __post_init__(self):
        if self.n < 1 or self.n_p < 1 or self.roots < 0 or self.branching < 1 or self.depth < 0:
            raise ValueError("need n, n_p, branching >= 1 and roots, depth >= 0")
        if not 0 < self.p_min <= self.p_max <= 1:
            raise ValueError(f"need 0 < p_min <= p_max <= 1; got {self.p_min}, {self.p_max}")
        if self.forest_size() > self.n:
            raise ValueError(f"the forest holds {self.forest_size()} features, more than n={self.n}")
        if self.scale_children_by_parent and min(self.mean_start, self.mean_end) <= 0:
            raise ValueError("scale_children_by_parent divides by the parents' mean magnitudes: they must be > 0")

    def forest_size(self) -> int:
        return self.roots * sum(self.branching ** level for level in range(self.depth + 1))

    @classmethod
    def reduced(cls, n: int = 2048, n_p: int = 256, roots: int = 16, **changes) -> "SynthConfig":
        """The benchmark's structure at a size for 2 CPU cores: 16 trees of depth 3 (1,360 features)."""
        return replace(cls(), n=n, n_p=n_p, roots=roots, **changes)


def zipf_probabilities(cfg: SynthConfig) -> Tensor:
    """p_i = p_min + (p_max - p_min) (r_i - r_min) / (r_max - r_min) with r_i = (i + 1)^(-exponent)."""
    r = torch.arange(1, cfg.n + 1, dtype=torch.float64) ** -cfg.zipf_exponent
    if cfg.n == 1:
        return torch.full((1,), cfg.p_max, dtype=torch.float64)
    return cfg.p_min + (cfg.p_max - cfg.p_min) * (r - r.min()) / (r.max() - r.min())


def forest(cfg: SynthConfig) -> tuple[Tensor, Tensor]:
    """(parent (n,), level (n,)) int64: each feature's parent (-1 for roots and free features) and level (0 for
    roots, -1 for free features), indices assigned level by level across the forest."""
    parent = torch.full((cfg.n,), -1, dtype=torch.long)
    level = torch.full((cfg.n,), -1, dtype=torch.long)
    current = list(range(cfg.roots))
    level[:cfg.roots] = 0
    nxt = cfg.roots
    for depth in range(1, cfg.depth + 1):
        children = []
        for p in current:
            kids = list(range(nxt, nxt + cfg.branching))
            parent[kids], level[kids] = p, depth
            children += kids
            nxt += cfg.branching
        current = children
    return parent, level


class SynthWorld:
    """The built world: directions W_p (n_p, n) with unit columns, bias b (n_p,), corrected firing
    probabilities p (n,), magnitude means and stds (n,), the copula's factor (n, rank) and diagonal (n,), and the
    forest (``parent``, ``level``). :meth:`sample` draws (codes x (B, n), x_p (B, n_p))."""

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        g = torch.Generator().manual_seed(cfg.seed)
        W = torch.nn.functional.normalize(torch.randn(cfg.n, cfg.n_p, generator=g), dim=1)
        b = torch.randn(cfg.n_p, generator=g)
        self.b = b / b.norm() * cfg.bias
        self.W_p = _orthogonalize(W, cfg.orthogonalize_steps, cfg.orthogonalize_lr).T.contiguous()   # (n_p, n)
        self.parent, self.level = forest(cfg)
        base = zipf_probabilities(cfg)
        self.p = (base * self._correction(base)).clamp(max=1.0)
        self.mean = torch.linspace(cfg.mean_start, cfg.mean_end, cfg.n, dtype=torch.float64)
        gs = torch.Generator().manual_seed(cfg.seed + 1)
        self.std = (cfg.std_mean + torch.randn(cfg.n, generator=gs, dtype=torch.float64) * cfg.std_std).abs()
        gc = torch.Generator().manual_seed(cfg.seed + 4)
        F = torch.randn(cfg.n, cfg.correlation_rank, generator=gc, dtype=torch.float64) * cfg.correlation_scale
        rows = F.pow(2).sum(1)
        if bool((rows >= 1).any()):                      # keep every diagonal term positive
            F = F * math.sqrt(0.99 / float(rows.max()))
        self.factor, self.diag = F, 1 - F.pow(2).sum(1)
        self._set_probabilities(self.p)

    def _set_probabilities(self, p: Tensor) -> None:
        """Firing probabilities p (n,) and the copula's thresholds for them."""
        self.p = p
        self.threshold = math.sqrt(2) * torch.erfinv(1 - 2 * p.clamp(1e-12, 1 - 1e-12))
        self._cache: dict[str, dict] = {}

    def chunks(self, n: int, g: torch.Generator, chunk: int = 4096):
        """``n`` samples drawn from ``g`` as successive :meth:`sample` chunks (x, x_p) of at most ``chunk`` rows,
        so that a large draw never holds all codes (n, n_features) at once."""
        for i in range(0, n, chunk):
            yield self.sample(min(chunk, n - i), g)

    def firing_rates(self, n: int = 65536, seed: int = 0, chunk: int = 4096) -> Tensor:
        """Each feature's firing rate (n_features,), float64, over ``n`` samples drawn in chunks."""
        fired = torch.zeros(self.cfg.n, dtype=torch.float64)
        for x, _ in self.chunks(n, torch.Generator().manual_seed(seed), chunk):
            fired += (x > 0).sum(0)
        return fired / n

    def without_hierarchy(self, p: Tensor | None = None) -> "SynthWorld":
        """The control world: the same directions, bias, copula and magnitude laws, no forest (no child is gated
        by, or scaled with, a parent); every feature fires with probability ``p`` (n_features,): by default its
        Zipfian probability, or, for a control with this world's marginals, ``self.firing_rates()``."""
        ctrl = copy.copy(self)
        ctrl.cfg = replace(self.cfg, roots=0)
        ctrl.parent, ctrl.level = forest(ctrl.cfg)
        p = zipf_probabilities(ctrl.cfg) if p is None else torch.as_tensor(p, dtype=torch.float64)
        if p.shape != (self.cfg.n,) or not bool(((p >= 0) & (p <= 1)).all()):
            raise ValueError(f"p must hold {self.cfg.n} probabilities in [0, 1]; got shape {tuple(p.shape)}")
        ctrl._set_probabilities(p)
        return ctrl

    @property
    def n(self) -> int:
        return self.cfg.n

    def edges(self) -> list[tuple[int, int]]:
        """Every (parent, child) edge of the forest."""
        kids = (self.parent >= 0).nonzero().flatten()
        return [(int(self.parent[c]), int(c)) for c in kids]

    def _correction(self, base: Tensor) -> Tensor:
        """Children's probabilities divided by their parent's base probability (they can fire only with it), times
        1 + (the siblings' base probabilities) / p_parent under mutual exclusion; 1 for roots and free features."""
        out = torch.ones_like(base)
        kids = (self.parent >= 0).nonzero().flatten()
        if len(kids):
            pp = base[self.parent[kids]]
            out[kids] = 1 / pp
            if self.cfg.mutually_exclusive:
                sib_sum = torch.zeros_like(base).index_add_(0, self.parent[kids], base[kids])
                out[kids] *= 1 + (sib_sum[self.parent[kids]] - base[kids]) / pp
        return out

    def _on(self, device) -> dict[str, Tensor]:
        """The sampler's tensors in float32 on ``device`` (cached per device)."""
        key = str(torch.device(device))
        if key not in self._cache:
            f32 = dict(factor_T=self.factor.T, diag_sqrt=self.diag.sqrt(), threshold=self.threshold,
                       mean=self.mean, std=self.std, W_p_T=self.W_p.T, b=self.b)
            self._cache[key] = {name: t.to(device, torch.float32).contiguous() for name, t in f32.items()} | {
                "levels": [(kids.to(device), self.parent[kids].to(device)) for kids in
                           ((self.level == d).nonzero().flatten() for d in range(1, self.cfg.depth + 1))
                           if len(kids)]}
        return self._cache[key]

    def sample(self, batch: int, generator: torch.Generator, device="cpu") -> tuple[Tensor, Tensor]:
        """(x (batch, n), x_p (batch, n_p)), float32, drawn on ``device``: from ``generator`` on the CPU; on
        another device from a generator there seeded by one draw of ``generator`` (same seed, same batches)."""
        T, cfg = self._on(device), self.cfg
        g = generator
        if torch.device(device).type != "cpu":
            seed = int(torch.randint(2 ** 62, (1,), generator=generator))
            g = torch.Generator(device).manual_seed(seed)
        eps = torch.randn(batch, cfg.correlation_rank, generator=g, device=device)
        eta = torch.randn(batch, cfg.n, generator=g, device=device)
        fires = eps @ T["factor_T"] + eta * T["diag_sqrt"] > T["threshold"]
        noise = torch.randn(batch, cfg.n, generator=g, device=device)
        x = torch.relu(T["mean"] + T["std"] * noise) * fires
        for kids, par in T["levels"]:
            pv = x[:, par]
            factor = pv / T["mean"][par] if cfg.scale_children_by_parent else (pv > 0).float()
            x[:, kids] = x[:, kids] * factor
            if cfg.mutually_exclusive:
                x[:, kids] = _one_sibling(x[:, kids], par, g)
        x = torch.relu(x)
        return x, x @ T["W_p_T"] + T["b"]


def _one_sibling(vals: Tensor, parents: Tensor, generator: torch.Generator) -> Tensor:
    """Keep, in every row, one active child per parent chosen uniformly at random; vals (B, m) of children whose
    parents are ``parents`` (m,), siblings contiguous (as :func:`forest` numbers them)."""
    B, m = vals.shape
    k = int((parents == parents[0]).sum())               # siblings per parent (a constant branching)
    groups = vals.view(B, m // k, k)
    active = groups > 0
    score = torch.rand(B, m // k, k, generator=generator, dtype=vals.dtype, device=vals.device)
    score = score.masked_fill(~active, -1.0)
    keep = torch.zeros_like(active).scatter_(2, score.argmax(2, keepdim=True), True) & active
    return (groups * keep).view(B, m)


def _orthogonalize(W: Tensor, steps: int, lr: float, chunk: int = 1024) -> Tensor:
    """Adam on sum of squared off-diagonal dot products + n * sum (||w||^2 - 1)^2 over chunks of rows, then unit
    rows (the benchmark's procedure). W (n, d)."""
    W = W.clone().requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)
    n = W.shape[0]
    for _ in range(steps):
        opt.zero_grad()
        for i in range(0, n, chunk):
            G = W[i:i + chunk] @ W.T
            diag = G[:, i:i + chunk].diagonal()
            loss = G.pow(2).sum() - diag.pow(2).sum() + n * (diag - 1).pow(2).sum()
            loss.backward()
        opt.step()
    return torch.nn.functional.normalize(W.detach(), dim=1)


class SynthSource(Source):
    """A :class:`SynthWorld` as a training source (an SAE: the target is the input), its directions known."""

    autoencoder = True

    def __init__(self, world: SynthWorld):
        self.world, self.n_p, self.n_r = world, world.cfg.n_p, world.cfg.n_p
        self.directions = (world.W_p, world.W_p)

    def rows(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        _, x_p = self.world.sample(n, generator)
        return x_p, x_p

    def sample(self, generators, batch, device):
        """Model k's batch (K, B, n_p), drawn on the training device from generators[k]."""
        x_p = torch.stack([self.world.sample(batch, g, device)[1] for g in generators])
        return x_p, x_p                              # an SAE: the target is the same tensor

    def describe(self) -> dict:
        return super().describe() | {"world": "synthsaebench", "n": self.world.n, "seed": self.world.cfg.seed}
