"""The state of a training run: K models' parameters, their Adam moments, counters and random states, everything a
run needs to continue (a checkpoint is this, written to files: :mod:`sdl_paper.training.checkpoint`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..model.config import Config
from ..model.dictionary import init_params


@dataclass
class State:
    """Everything a run needs to continue: parameters, Adam moments, counters and random states."""

    params: dict[str, Tensor]
    adam_m: dict[str, Tensor]
    adam_v: dict[str, Tensor]
    step: int = 0
    last_fired: Tensor | None = None     # (K, n_q): last step at which each latent fired (-1: never; a resampled
                                         # latent counts as firing at its resampling step)
    history: list[dict] = field(default_factory=list)
    generators: list = field(default_factory=list)
    tracked: list[dict] = field(default_factory=list)   # ground-truth metrics every cfg.track_every steps
    resampled: list[dict] = field(default_factory=list)  # one entry per model and resampling event (see resample)
    config: dict | None = None           # Config.to_dict() of the run that trained it
    seeds: list[int] = field(default_factory=list)
    source: dict | None = None           # Source.describe() of the data it was trained on


def select(state: State, models: list[int]) -> State:
    """The run of ``models`` (indices into the K models) alone: parameters, Adam moments, firing record,
    generators, seeds and the per-model entries of the history and tracked metrics; a copy, ready to continue
    (``train(..., state=select(state, [i]))`` goes on as model i would have)."""
    K = len(state.generators)
    if not models or any(not 0 <= m < K for m in models):
        raise ValueError(f"models={models!r}: need indices of the {K} models of this state")
    pick = lambda d: {n: v[models].clone() for n, v in d.items()}         # noqa: E731
    def per_model(entry: dict) -> dict:
        return {k: ([v[m] for m in models] if isinstance(v, list) and len(v) == K else v) for k, v in entry.items()}
    gens = []
    for m in models:
        g = torch.Generator(device=state.generators[m].device)
        g.set_state(state.generators[m].get_state())
        gens.append(g)
    return State(pick(state.params), pick(state.adam_m), pick(state.adam_v), state.step,
                 None if state.last_fired is None else state.last_fired[models].clone(),
                 [per_model(h) for h in state.history], gens, [per_model(t) for t in state.tracked],
                 [r | {"model": models.index(r["model"])} for r in state.resampled if r.get("model") in models],
                 state.config,
                 [state.seeds[m] for m in models] if state.seeds else [], state.source)


def init_state(K: int, n_p: int, n_q: int, n_r: int, cfg: Config, seeds: list[int]) -> State:
    """A fresh run of K models (:func:`~sdl_paper.model.dictionary.init_params`), model k's data generator seeded
    from seeds[k]."""
    params = init_params(K, n_p, n_q, n_r, cfg, seeds)
    zeros = {name: torch.zeros_like(p) for name, p in params.items()}
    return State(params, zeros, {n: z.clone() for n, z in zeros.items()}, 0,
                 torch.full((K, n_q), -1, dtype=torch.long),   # -1: never fired (see dead_mask)
                 generators=[torch.Generator().manual_seed(s + 1_000_003) for s in seeds])


def dead_mask(state: State, window: int) -> Tensor:
    """(K, n_q) bool: latents that have not fired in any of the last ``window`` steps (none before ``window``
    steps), the same count as :func:`sdl_paper.studies.experiments.dead_by_window` on the recorded firing."""
    return (state.step - 1 - state.last_fired) >= window


def row_major(*ts: Tensor) -> tuple[Tensor, ...]:
    """The same tensors, transposed (last two axes) together when the first is column-major (as W_D is stored):
    element-wise work (Adam, an all-reduce) can then run on contiguous views of the same memory."""
    p = ts[0]
    if p.ndim >= 2 and not p.is_contiguous() and p.transpose(-1, -2).is_contiguous():
        return tuple(t.transpose(-1, -2) for t in ts)
    return ts


def to_device(state: State, device) -> None:
    """Move parameters and Adam moments to ``device``; data generators follow it, so batches are drawn there.

    A CPU generator moved to CUDA is replaced by a CUDA generator seeded from it (deterministic, but CUDA
    batches differ from CPU batches); on the CPU nothing changes.
    """
    device = torch.device(device)
    for d in (state.params, state.adam_m, state.adam_v):
        for k in d:
            d[k] = d[k].detach().to(device).requires_grad_(d is state.params and d[k].requires_grad)
    for i, g in enumerate(state.generators):
        if g.device.type != device.type:
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=g, device=g.device))
            state.generators[i] = torch.Generator(device=device).manual_seed(seed)
