"""The one training loop: K independent SDL models of the same shapes trained as one batched model.

Every tensor carries a leading model axis K (K = 1 for a single run): W_E is (K, n_q, n_p), W_D is (K, n_r, n_q),
batches are (K, B, n_p) (the model form: :mod:`sdl_paper.model.dictionary`). Models never interact: the loss is a
sum over models and Adam is element-wise, so a batched run gives the same numbers as K separate runs with the same
seeds (tested), at a fraction of the cost. Any data source trains (:func:`sdl_paper.data.arrays.as_source`).

:func:`fit` is the loop (sample, forward, loss, backward, step, callbacks); :func:`train` checks everything
first, then sets up the state and the callbacks (:mod:`sdl_paper.training.callbacks`) and runs it. Resuming:
``train(source, cfg, n_q, seeds, state=load_checkpoint(path))`` continues up to ``cfg.steps`` steps in total; a
checkpoint of other sizes, seeds or settings that change the model is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.arrays import Source, as_source
from ..io.files import check_output_folder
from ..model.config import AUXK, PER_MODEL, Config
from ..model.dictionary import sizes
from ..model.sparse import Workspace
from . import callbacks as C
from . import distributed as dist
from . import schedule
from .device import default_device
from .objective import batch_norms, objective
from .optim import adam_step, clip_per_model, constrain
from .state import State, dead_mask, init_state, to_device


@dataclass
class Run:
    """What the loop and its callbacks share: the state, the data, the configuration and where it runs."""

    state: State
    source: Source
    cfg: Config
    device: str
    seeds: list[int]
    desc: str = "train"
    anchors: dict[str, Tensor] | None = None
    ws: Workspace | None = None
    scale: list[float] | None = None     # activation normalisation: inputs times scale[0], targets times scale[1]


def loss_terms(run: Run, x_p: Tensor, x_r: Tensor) -> dict[str, Tensor]:
    """The objective's terms on one batch (bf16 autocast when asked; AuxK reads the dead latents)."""
    state, cfg = run.state, run.cfg
    if run.ws is not None:
        run.ws.attach(state.params)
    with torch.autocast(torch.device(run.device).type, torch.bfloat16, enabled=cfg.amp == "bf16"):
        dead = dead_mask(state, cfg.dead_window).to(x_p.device) if cfg.remedy in AUXK else None
        terms = objective(state.params, x_p, x_r, cfg, dead, run.anchors, run.ws,   # last_fired stays on the CPU
                          schedule.sparsity_warm_up(cfg, state.step))
    if C.at(state.step, cfg.log_every, cfg.steps):       # what BatchLog records, on its steps only
        terms |= batch_norms(x_r)
    return terms


def backward(run: Run, terms: dict[str, Tensor]) -> None:
    """Gradients of the summed loss, averaged over processes; the logged terms too. A parameter the loss did not
    use this step (AuxK's W_aux while no latent is dead) gets its exact gradient, zero."""
    terms["total"].sum().backward()
    for p in run.state.params.values():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_mean(p.grad)
    logged = ("penalty", "aux", "energy", "var") if "energy" in terms else ()   # BatchLog's steps (loss_terms)
    for name in ("rec", "L0", *logged):
        terms[name] = dist.all_mean(terms[name].detach().clone())
    terms["fired"] = dist.all_any(terms["fired"])


def fit(run: Run, callbacks: list[C.Callback]) -> State:
    """Train ``run.state`` up to ``run.cfg.steps`` steps, calling ``callbacks`` (see their module)."""
    state, cfg = run.state, run.cfg
    for cb in callbacks:
        cb.on_start(run)
    while state.step < cfg.steps:
        for cb in callbacks:
            cb.before_step(run)
        try:                                                               # sample
            x_p, x_r = run.source.sample(state.generators, cfg.batch_size, run.device)
        except StopIteration:
            state.history.append({"step": state.step, "stopped": "the data source ended"})
            break
        if run.scale is not None:                                       # activation normalisation
            scaled = x_p * run.scale[0]
            x_p, x_r = scaled, (scaled if x_r is x_p else x_r * run.scale[1])
        terms = loss_terms(run, dist.shard(x_p), dist.shard(x_r))         # forward and loss
        total = dist.all_mean(terms["total"].detach().clone())
        for cb in callbacks:
            cb.on_loss(run, total)
        backward(run, terms)                                              # backward
        if cfg.clip_grad:
            clip_per_model(state.params, cfg.clip_grad)
        adam_step(state, schedule.learning_rate(cfg, state.step), cfg.betas)   # step
        constrain(state.params, cfg.unit_decoder)
        state.step += 1
        for cb in callbacks:
            cb.after_step(run, terms)
    for cb in callbacks:
        cb.on_end(run)
    return state


# settings a checkpoint must share with the run that resumes it: they change the model or its forward pass (the
# others may change, e.g. lr, l1 or steps)
_MODEL_FIELDS = ("method", "k", "k_levels", "activation", "tied", "bias", "prefixes", "practice", "subtract_b_D",
                 "unit_decoder", "remedy", "aux_k", "anchors", "normalize_activations")


def check_resume(state: State, cfg: Config, n_p: int, n_q: int, n_r: int, seeds: list[int],
                 source: dict | None = None) -> None:
    """Refuse to resume ``state`` with other sizes, seeds, model settings or data (``source``: the new run's
    ``Source.describe()``; its kind and number of rows must match the checkpoint's), or with no steps left."""
    if not isinstance(state.config, dict) or not state.config:
        raise ValueError("the checkpoint holds no configuration, so it cannot be checked against this run; it was "
                         "not written by save_checkpoint")
    saved_source = state.source if isinstance(state.source, dict) else {}
    for key in ("kind", "rows"):
        if source is not None and key in saved_source and saved_source[key] != source.get(key):
            raise ValueError(f"checkpoint was trained on data with {key}={saved_source[key]!r}; this run's data "
                             f"has {key}={source.get(key)!r}")
    K, p, q, r = sizes(state.params)
    if (p, q, r) != (n_p, n_q, n_r):
        raise ValueError(f"checkpoint has sizes n_p={p}, n_q={q}, n_r={r}; this run asks n_p={n_p}, n_q={n_q}, "
                         f"n_r={n_r}")
    if K != len(seeds) or (state.seeds and list(state.seeds) != list(seeds)):
        raise ValueError(f"checkpoint holds {K} models with seeds {state.seeds}; this run asks seeds {seeds}")
    saved, asked, default = state.config, cfg.to_dict(), Config.theory().to_dict()
    for name in _MODEL_FIELDS:       # a field older files lack had its default value
        if _norm(saved.get(name, default[name])) != _norm(asked[name]):
            raise ValueError(f"checkpoint was trained with {name}={saved.get(name, default[name])!r}; this run asks "
                             f"{name}={asked[name]!r}")
    if cfg.steps <= state.step:
        raise ValueError(f"checkpoint is at step {state.step} and steps={cfg.steps} is a total, so nothing is "
                         f"left to train; ask steps > {state.step}")


def _norm(v):
    """JSON round trips turn tuples into lists: compare them as lists."""
    return list(v) if isinstance(v, tuple) else v


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, int) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                      for s in seeds):
        raise TypeError(f"seeds={seeds!r} must be a non-empty list of ints, one per model, e.g. [0] or "
                        "list(range(3))")
    return list(seeds)


def _check_copies(seeds: list[int], cfg: Config, anchors) -> None:
    """Refuse a repeated seed when nothing else differs between the models (they would be identical copies); a
    sweep (per-model values of :data:`~sdl_paper.model.config.PER_MODEL` or per-model anchors) may repeat seeds."""
    swept = any(isinstance(getattr(cfg, f), tuple) for f in PER_MODEL) or (
        anchors is not None and anchors["A_p"].ndim == 3)
    if len(set(seeds)) != len(seeds) and not swept:
        raise ValueError(f"seeds={seeds!r} repeats a seed and no per-model setting differs: those models would be "
                         "identical copies")


def _check_anchors(anchors, cfg: Config, n_p: int, n_r: int, K: int) -> None:
    if bool(cfg.anchors) != (anchors is not None):
        raise ValueError(f"cfg.anchors={cfg.anchors} but anchors are {'given' if anchors is not None else 'missing'}"
                         ": pass both (anchors={'A_p': (m, n_p), 'A_r': (n_r, m)} with m = cfg.anchors) or neither")
    if anchors is None:
        return
    m, got = cfg.anchors, (tuple(anchors["A_p"].shape), tuple(anchors["A_r"].shape))
    if got not in (((m, n_p), (n_r, m)), ((K, m, n_p), (K, n_r, m))):
        raise ValueError(f"anchors must be A_p ({m}, {n_p}) and A_r ({n_r}, {m}), shared by all models, or per "
                         f"model A_p ({K}, {m}, {n_p}) and A_r ({K}, {n_r}, {m}); got {got[0]}, {got[1]}")


def check_run(source: Source, cfg: Config, n_q: int, seeds: list[int], state: State | None, anchors) -> None:
    """Everything :func:`train` refuses, checked before any work."""
    if isinstance(n_q, bool) or not isinstance(n_q, int) or n_q < 1:
        raise ValueError(f"n_q={n_q!r} must be an int >= 1 (the number of latents)")
    cfg.check_sizes(source.n_p, n_q, source.n_r)
    cfg.check_models(len(seeds))
    if cfg.practice == "standard" and cfg.subtract_b_D and source.autoencoder is False:
        raise ValueError("practice='standard' with subtract_b_D=True needs a source whose target is its input (an "
                         "SAE); this source's target differs (a transcoder): SAELens's transcoders do not subtract "
                         "b_D, so set subtract_b_D=False")
    if cfg.track_every:
        source.W_p                                   # refuses when the source has no directions
    _check_anchors(anchors, cfg, source.n_p, source.n_r, len(seeds))
    _check_copies(seeds, cfg, anchors)
    if cfg.batch_size % dist.world()[1]:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes "
                         f"({dist.world()[1]})")
    if state is not None:
        check_resume(state, cfg, source.n_p, n_q, source.n_r, seeds, source.describe())


def _input_scale(state: State | None, source: Source, cfg: Config) -> list[float] | None:
    """[c_p, c_r] of activation normalisation: sqrt(width / mean squared norm) of inputs and targets on 4096
    rows drawn with a generator of its own (a resumed run keeps its checkpoint's factors); None when off."""
    if cfg.normalize_activations == "none":
        return None
    saved = state.source.get("scale") if state is not None and isinstance(state.source, dict) else None
    if saved is not None:
        return list(saved)
    if getattr(source, "shared_batches", False):
        raise ValueError("normalize_activations estimates its factor on a sample drawn before training, which "
                         "would use up batches of an iterable: pass a tensor, an array or a file")
    x_p, x_r = source.pool(4096, torch.Generator().manual_seed(0))
    factor = lambda x: float((x.shape[1] / x.double().pow(2).sum(1).mean()).sqrt())   # noqa: E731
    c_p = factor(x_p)
    return [c_p, c_p if source.autoencoder else factor(x_r)]


def default_callbacks(cfg: Config, progress: bool | None, checkpoint: str | None, checkpoint_every: int,
                      callback=None) -> list[C.Callback]:
    """The callbacks :func:`train` runs, in order: remedies and checks, bookkeeping, logging, the user's, files."""
    cbs = [C.Resampling()] if cfg.remedy == "resample" else []
    cbs += [C.DivergenceCheck(), C.FiringRecord(), C.BatchLog(), C.ProgressBar(progress)]
    cbs += [C.Tracking(cfg.track_every)] if cfg.track_every else []
    cbs += [cb if isinstance(cb, C.Callback) else C.AfterStep(cb) for cb in
            (callback if isinstance(callback, (list, tuple)) else [callback]) if cb is not None]
    return cbs + ([C.Checkpointing(checkpoint, checkpoint_every)] if checkpoint else [])


def train(data, cfg: Config, n_q: int, seeds: list[int], state: State | None = None, device: str = "auto",
          anchors: dict[str, Tensor] | None = None, progress: bool | None = None, desc: str = "train",
          checkpoint: str | None = None, checkpoint_every: int = 0, callback=None) -> State:
    """Train len(seeds) models with n_q latents on ``data`` up to ``cfg.steps`` steps (continuing ``state``).

    Args:
        data: anything :func:`~sdl_paper.data.arrays.as_source` accepts (GroundTruth, Source, tensor (N, n_p),
            ``.npy`` / ``.safetensors`` path, iterable of batches).
        anchors: ``{"A_p": (m, n_p), "A_r": (n_r, m)}`` anchor directions (feature anchoring, ``cfg.anchors = m``),
            shared by all models, or per model with a leading dimension K = len(seeds).
        device: ``auto`` (the default: CUDA when present, else the CPU), ``cpu`` or ``cuda``; refused when absent.
        checkpoint: a folder written every ``checkpoint_every`` steps and at the end (see
            :func:`sdl_paper.training.checkpoint.save_checkpoint`).
        callback: ``callback(state, terms)`` after every step, a :class:`~sdl_paper.training.callbacks.Callback`,
            or a list of them.

    Logs per-model metrics every ``cfg.log_every`` steps into ``state.history``.

    Raises:
        TrainingDiverged: at the first step whose loss is not finite.
    """
    if checkpoint is not None:      # refused before any work, not after training
        check_output_folder(checkpoint, "checkpoint")
    source: Source = as_source(data)
    seeds = _check_seeds(seeds)
    device = str(default_device(None if device == "auto" else device))
    check_run(source, cfg, n_q, seeds, state, anchors)
    state = state or init_state(len(seeds), source.n_p, n_q, source.n_r, cfg, seeds)
    scale = _input_scale(state, source, cfg)
    state.config, state.seeds, state.source = cfg.to_dict(), seeds, source.describe() | (
        {"scale": scale} if scale else {})
    for p in state.params.values():
        p.requires_grad_(True)
    to_device(state, device)
    run = Run(state, source, cfg, device, seeds, desc, anchors and {k: v.to(device) for k, v in anchors.items()},
              Workspace(state.params) if cfg.impl.sparse_path(cfg, n_q) else None, scale)
    fit(run, default_callbacks(cfg, progress if dist.world()[0] == 0 else False, checkpoint, checkpoint_every,
                               callback))
    for p in state.params.values():
        p.requires_grad_(False)
    return state
