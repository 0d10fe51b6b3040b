"""The training engine: K independent SDL models of the same shapes trained as one batched model.

Every tensor carries a leading model axis K (K = 1 for a single run): W_E is (K, n_q, n_p), W_D is (K, n_r, n_q),
batches are (K, B, n_p) (the model form: :mod:`sdl_paper.engine.dictionary`). Models never interact: the loss is a
sum over models and Adam is element-wise, so a batched run gives the same numbers as K separate runs with the same
seeds (tested), at a fraction of the cost. Any data source trains (:func:`sdl_paper.sources.arrays.as_source`: a
GroundTruth, a tensor, a ``.npy`` / ``.safetensors`` file, an iterable of batches).

Methods (``Config.method``): ``relu`` (ReLU + L1), ``relu_dec`` (ReLU + L1 weighted by decoder-column norms),
``jumprelu`` (straight-through estimator, L0 penalty; Rajamanoharan et al. 2024b), ``topk`` (Gao et al. 2024),
``batchtopk`` (Bussmann et al. 2024), ``matryoshka`` (nested prefixes over BatchTopK; Bussmann et al. 2025).
Dead-latent remedies (``Config.remedy``): ``none``, ``resample`` (Anthropic 2023, see
:mod:`sdl_paper.engine.resampling`) and ``auxk`` (Gao et al. 2024).

Resuming: ``train(source, cfg, n_q, seeds, state=load_checkpoint(path))`` continues up to ``cfg.steps`` steps in
total; a checkpoint of other sizes, seeds or settings that change the model is refused.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..sources.arrays import GroundTruthSource, Source, as_source
from .dictionary import (METHODS, REMEDIES, Config, State, activation_spec, dead_mask, decode, encode,  # noqa: F401
                         from_sdl, init_state, per_model, rescaled, row_major, sizes, thresholds, to_sdl,
                         with_decoder)
from .kernels import JumpReLUSTE, StepSTE, batchtopk_mask, topk_mask  # noqa: F401
from .sparse import Workspace, sparse_topk
from .progress import bar
from .resampling import resample


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the model."""


def sparse_path(cfg: Config, n_q: int) -> bool:
    """Whether TopK trains by the sparse kernels (:func:`~sdl_paper.engine.sparse.sparse_topk`): ``cfg.sparse``,
    or by default from n_q = 512 latents on."""
    return cfg.method == "topk" and not cfg.activation and (cfg.sparse if cfg.sparse is not None else n_q >= 512)


def objective(params: dict[str, Tensor], x_p: Tensor, x_r: Tensor, cfg: Config, dead: Tensor | None = None,
              anchors: dict[str, Tensor] | None = None, ws: Workspace | None = None) -> dict[str, Tensor]:
    """Per-model loss terms, each (K,): ``rec`` (squared error), ``penalty``, ``aux`` and their sum ``total``.

    Args:
        dead: (K, n_q) bool, the latents AuxK may use (only with remedy ``auxk``).
        anchors: ``{"A_p": (m, n_p), "A_r": (n_r, m)}`` known directions pulling the first m encoder rows and decoder
            columns (feature anchoring, with coefficient ``cfg.anchor_coef``).
        ws: the training loop's :class:`~sdl_paper.engine.sparse.Workspace` (sparse TopK path only): the sparse
            kernel adds its gradients into its buffers, which :meth:`~Workspace.attach` made the .grad.
    """
    K = x_p.shape[0]
    params = with_decoder(params)
    use_aux = cfg.remedy == "auxk" and dead is not None and bool(dead.any())
    k_aux = min(cfg.aux_k or x_p.shape[-1] // 2, params["W_E"].shape[1])

    def dead_share(dtype):                           # SAELens weighs AuxK by min(n_dead / k_aux, 1)
        return (dead.sum(1).to(dtype) / (cfg.aux_k or x_p.shape[-1] // 2)).clamp(max=1.0)
    sparse = sparse_path(cfg, params["W_E"].shape[1])
    if sparse:
        aux_w = None
        if use_aux:
            aux_w = torch.full((K,), cfg.aux_coef, device=x_p.device)
            if cfg.practice == "standard":
                aux_w = aux_w * dead_share(torch.float32)
        out = sparse_topk(params, x_p, x_r, cfg.k, cfg.practice == "standard" and cfg.subtract_b_D, rescaled(cfg),
                          dead if use_aux else None, k_aux, aux_w, ws)
        on, n_q = out["vals"] > 0, params["W_E"].shape[1]                # (K, B, k): the chosen that fired
        # latent n_q is a sink for the chosen that did not fire (all writes are True: deterministic)
        fired = torch.zeros(K, n_q + 1, dtype=torch.bool, device=x_p.device).scatter_(
            1, torch.where(on, out["idx"], n_q).reshape(K, -1), True)[:, :n_q]
        l0 = on.sum(-1, dtype=torch.float32).mean(1)
    else:
        z, a = encode(params, x_p, cfg)
        x_hat = decode(params, a, cfg)
        fired, l0 = (a != 0).any(dim=1), (a != 0).float().sum(-1).mean(1)
    if cfg.method == "matryoshka":
        n_q = a.shape[-1]
        sizes = cfg.prefixes or (n_q // 8, n_q // 4, n_q // 2, n_q)
        if cfg.practice == "standard" and sizes[-1] != n_q:
            sizes = (*sizes, n_q)                    # SAELens appends d_sae to the widths
        recs = [(x_r - decode({**params, "W_D": params["W_D"][..., :m]}, a[..., :m], cfg)).pow(2).sum(-1).mean(1)
                for m in sizes]
        # theory: the mean over prefixes; SAELens: the full reconstruction plus each inner prefix's (a sum)
        rec = torch.stack(recs).sum(0) if cfg.practice == "standard" else torch.stack(recs).mean(0)
    elif sparse:
        rec = out["rec"]
    else:
        rec = (x_r - x_hat).pow(2).sum(-1).mean(1)
    penalty = torch.zeros(K, dtype=rec.dtype, device=rec.device)
    if cfg.method == "relu":
        penalty = per_model(cfg.l1, rec) * a.abs().sum(-1).mean(1)
    elif cfg.method == "relu_dec":
        penalty = per_model(cfg.l1, rec) * (a * params["W_D"].norm(dim=1)[:, None]).sum(-1).mean(1)
    elif cfg.method == "jumprelu":
        penalty = per_model(cfg.l0, rec) * StepSTE.apply(z, thresholds(params)[:, None], cfg.bandwidth).sum(-1).mean(1)
    if anchors is not None and cfg.anchors:
        m = anchors["A_p"].shape[0]
        penalty = penalty + per_model(cfg.anchor_coef, rec) * ((params["W_E"][:, :m] - anchors["A_p"]).pow(2).sum((1, 2))
                                               + (params["W_D"][..., :m] - anchors["A_r"]).pow(2).sum((1, 2)))
    aux = out["aux"] if sparse else torch.zeros_like(penalty)
    if use_aux and not sparse:
        mask = topk_mask(z.masked_fill(~dead[:, None], float("-inf")), k_aux) & dead[:, None]
        codes = z * mask
        if rescaled(cfg):                            # SAELens: codes divided by the decoder norms
            codes = codes / params["W_D"].norm(dim=1)[:, None].clamp_min(1e-12)
        e_hat = torch.bmm(codes, params["W_D"].transpose(1, 2))       # no decoder bias (Gao et al. 2024)
        aux = cfg.aux_coef * ((x_r - x_hat).detach() - e_hat).pow(2).sum(-1).mean(1)
        if cfg.practice == "standard":
            aux = aux * dead_share(aux.dtype)
    rec, penalty, aux = rec.float(), penalty.float(), aux.float()
    return {"rec": rec, "penalty": penalty, "aux": aux, "total": rec + penalty + aux, "fired": fired, "L0": l0}


@torch.no_grad()
def clip_per_model(params: dict[str, Tensor], max_norm: float) -> None:
    """Scale each model's gradient (all its parameters together) to norm at most ``max_norm``, as
    torch.nn.utils.clip_grad_norm_ does for one model (and K = 1 calls, for its fewer operations); models stay
    independent."""
    if next(iter(params.values())).shape[0] == 1:
        torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm, foreach=True)
        return
    norm = torch.stack([torch.linalg.vector_norm(p.grad, dim=tuple(range(1, p.grad.ndim))) ** 2   # no copy of
                        for p in params.values()]).sum(0).sqrt()                     # a column-major grad; (K,)
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for p in params.values():
        p.grad.mul_(scale.view(-1, *([1] * (p.grad.ndim - 1))))


def adam_step(state: State, lr, betas: tuple[float, float], eps: float = 1e-8) -> None:
    """One Adam update of every parameter from its .grad (bias correction by the global step); ``lr`` is a float
    or one value per model. torch's fused Adam kernel (one pass over each tensor, where the textbook sequence of
    element-wise operations takes eight: 7x faster at the bench shape on the CPU); same update up to rounding."""
    b1, b2 = betas
    names = list(state.params)
    # Adam is element-wise: a column-major W_D, its gradient and moments go in as their contiguous transposes, which
    # the fused kernel would otherwise copy (37 ms per step at the bench shape)
    quads = [row_major(state.params[n], state.params[n].grad, state.adam_m[n], state.adam_v[n]) for n in names]
    params, grads, m, v = (list(t) for t in zip(*quads))
    t = [torch.tensor(float(state.step + 1), device=params[0].device)] * len(params)   # one per tensor
    kw = dict(beta1=b1, beta2=b2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
    with torch.no_grad():
        if isinstance(lr, tuple):                           # one call per model, on its slices
            for k, lr_k in enumerate(lr):
                torch._fused_adam_([p[k] for p in params], [g[k] for g in grads], [x[k] for x in m],
                                   [x[k] for x in v], [], t, lr=lr_k, **kw)
        else:
            torch._fused_adam_(params, grads, m, v, [], t, lr=float(lr), **kw)
    for p in state.params.values():
        p.grad = None


def sample_views(gt, state: State, batch: int, device) -> tuple[Tensor, Tensor]:
    """(x_p, x_r) of shapes (K, B, n_p), (K, B, n_r): model k's batch from its own data generator."""
    return as_source(gt).sample(state.generators, batch, device)


# settings a checkpoint must share with the run that resumes it (the others may change, e.g. lr or steps)
_MODEL_FIELDS = ("method", "k", "tied", "bias", "prefixes", "remedy")


def check_resume(state: State, cfg: Config, n_p: int, n_q: int, n_r: int, seeds: list[int]) -> None:
    """Refuse to resume ``state`` with other sizes, seeds or model settings, or with no steps left."""
    K, p, q, r = sizes(state.params)
    if (p, q, r) != (n_p, n_q, n_r):
        raise ValueError(f"checkpoint has sizes n_p={p}, n_q={q}, n_r={r}; this run asks n_p={n_p}, n_q={n_q}, "
                         f"n_r={n_r}")
    if K != len(seeds) or (state.seeds and list(state.seeds) != list(seeds)):
        raise ValueError(f"checkpoint holds {K} models with seeds {state.seeds}; this run asks seeds {seeds}")
    saved, asked = state.config or {}, cfg.to_dict()
    for name in _MODEL_FIELDS:
        if name in saved and saved[name] != asked[name]:
            raise ValueError(f"checkpoint was trained with {name}={saved[name]!r}; this run asks "
                             f"{name}={asked[name]!r}")
    if cfg.steps <= state.step:
        raise ValueError(f"checkpoint is at step {state.step} and steps={cfg.steps} is a total, so nothing is "
                         f"left to train; ask steps > {state.step}")


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, int) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                      for s in seeds):
        raise TypeError(f"seeds={seeds!r} must be a non-empty list of ints, one per model, e.g. [0] or "
                        "list(range(3))")
    return list(seeds)


def _check_anchors(anchors, cfg: Config, n_p: int, n_r: int) -> None:
    if bool(cfg.anchors) != (anchors is not None):
        raise ValueError(f"cfg.anchors={cfg.anchors} but anchors are {'given' if anchors is not None else 'missing'}"
                         ": pass both (anchors={'A_p': (m, n_p), 'A_r': (n_r, m)} with m = cfg.anchors) or neither")
    if anchors is not None and (tuple(anchors["A_p"].shape) != (cfg.anchors, n_p)
                                or tuple(anchors["A_r"].shape) != (n_r, cfg.anchors)):
        raise ValueError(f"anchors must be A_p ({cfg.anchors}, {n_p}) and A_r ({n_r}, {cfg.anchors}); got "
                         f"{tuple(anchors['A_p'].shape)}, {tuple(anchors['A_r'].shape)}")


def train(data, cfg: Config, n_q: int, seeds: list[int], state: State | None = None, device: str = "cpu",
          anchors: dict[str, Tensor] | None = None, progress: bool | None = None, desc: str = "train",
          checkpoint: str | None = None, checkpoint_every: int = 0, callback=None) -> State:
    """Train len(seeds) models with n_q latents on ``data`` up to ``cfg.steps`` steps (continuing ``state``).

    Args:
        data: anything :func:`~sdl_paper.sources.arrays.as_source` accepts (GroundTruth, Source, tensor (N, n_p),
            ``.npy`` / ``.safetensors`` path, iterable of batches).
        anchors: ``{"A_p": (m, n_p), "A_r": (n_r, m)}`` anchor directions (feature anchoring, ``cfg.anchors = m``).
        device: ``cpu``, ``cuda`` or ``auto``; refused when absent.
        checkpoint: a folder written every ``checkpoint_every`` steps and at the end (see
            :func:`sdl_paper.formats.files.save_checkpoint`).
        callback: ``callback(state, terms)`` after every step.

    Logs per-model metrics every ``cfg.log_every`` steps into ``state.history``.

    Raises:
        TrainingDiverged: at the first step whose loss is not finite.
    """
    from ..formats.files import save_checkpoint
    from . import distributed as dist
    from .device import default_device

    source: Source = as_source(data)
    seeds = _check_seeds(seeds)
    device = str(default_device(None if device == "auto" else device))
    cfg.check_sizes(source.n_p, n_q, source.n_r)
    cfg.check_models(len(seeds))
    if cfg.practice == "standard" and cfg.subtract_b_D and source.autoencoder is False:
        raise ValueError("practice='standard' with subtract_b_D=True needs a source whose target is its input (an "
                         "SAE); this source's target differs (a transcoder): SAELens's transcoders do not subtract "
                         "b_D, so set subtract_b_D=False")
    if cfg.track_every:
        source.W_p                                   # refuses when the source has no directions
    _check_anchors(anchors, cfg, source.n_p, source.n_r)
    rank, world_size = dist.world()
    if cfg.batch_size % world_size:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world_size})")
    if state is not None:
        check_resume(state, cfg, source.n_p, n_q, source.n_r, seeds)
    progress = progress if rank == 0 else False
    state = state or init_state(len(seeds), source.n_p, n_q, source.n_r, cfg, seeds)
    state.config, state.seeds, state.source = cfg.to_dict(), seeds, source.describe()
    for p in state.params.values():
        p.requires_grad_(True)
    if anchors is not None:
        anchors = {k: v.to(device) for k, v in anchors.items()}
    to_device(state, device)
    resample_steps = set(cfg.resample_at)
    ws = Workspace(state.params) if sparse_path(cfg, n_q) else None
    steps_bar = bar(range(state.step, cfg.steps), desc=desc, show=progress)
    for _ in steps_bar:
        step = state.step
        if cfg.remedy == "resample" and step > 0 and (
                step in resample_steps or (cfg.resample_every and step % cfg.resample_every == 0)):
            resample(state, source, cfg, device)
        try:
            x_p, x_r = source.sample(state.generators, cfg.batch_size, device)
        except StopIteration:
            state.history.append({"step": step, "stopped": "the data source ended"})
            break
        x_p, x_r = dist.shard(x_p), dist.shard(x_r)                       # this process's part of the global batch
        if ws is not None:
            ws.attach(state.params)
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=cfg.amp == "bf16"):
            dead = dead_mask(state, cfg.dead_window).to(x_p.device) if cfg.remedy == "auxk" else None
            terms = objective(state.params, x_p, x_r, cfg, dead, anchors, ws)   # last_fired stays on the CPU
        total = dist.all_mean(terms["total"].detach().clone())
        # one sum and one read per step; the elementwise check only when the sum is not finite
        if not math.isfinite(total.sum().item()) and not torch.isfinite(total).all():
            bad = int((~torch.isfinite(total)).nonzero()[0])
            raise TrainingDiverged(f"{desc}: loss of model {bad} (seed {seeds[bad]}) is {total[bad].item()} at "
                                   f"step {step}; lower lr (now {cfg.lr}) or check the data")
        terms["total"].sum().backward()
        for p in state.params.values():
            dist.all_mean(p.grad)
        for name in ("rec", "L0"):
            terms[name] = dist.all_mean(terms[name].detach().clone())
        terms["fired"] = dist.all_any(terms["fired"])
        if cfg.clip_grad:
            clip_per_model(state.params, cfg.clip_grad)
        adam_step(state, cfg.lr, cfg.betas)
        with torch.no_grad():
            if "theta" in state.params:                         # SAELens: thresholds projected to >= 0
                state.params["theta"].clamp_(min=0)
            if cfg.unit_decoder:
                W_D = with_decoder(state.params)["W_D"]           # a view: tied models renormalise W_E's rows
                W_D /= W_D.norm(dim=1, keepdim=True).clamp_min(1e-12)
            state.last_fired.masked_fill_(terms["fired"].cpu(), step)
        state.step += 1
        if step % cfg.log_every == 0 or state.step == cfg.steps:
            state.history.append({"step": step, "loss": terms["rec"].tolist(),
                                  "L0": terms["L0"].tolist(),
                                  "window_dead": dead_mask(state, cfg.dead_window).float().mean(1).tolist()})
            steps_bar.set_postfix(loss=f"{terms['rec'].mean().item():.4g}", refresh=False)
        if cfg.track_every and (step % cfg.track_every == 0 or state.step == cfg.steps):
            state.tracked.append({"step": step, "models": track(state.params, source, cfg)})
        if callback is not None:
            callback(state, terms)
        if checkpoint and rank == 0 and checkpoint_every and state.step % checkpoint_every == 0:
            save_checkpoint(state, checkpoint)
    if checkpoint and rank == 0:
        save_checkpoint(state, checkpoint)
    for p in state.params.values():
        p.requires_grad_(False)
    return state


def fixed_views(gt, K: int, n: int, seed: int, device="cpu") -> tuple[Tensor, Tensor, Tensor]:
    """One seeded evaluation set shared by K models: x (n, n_features), x_p (K, n, n_p), x_r (K, n, n_r)."""
    x = gt.coefficients.sample(n, torch.Generator().manual_seed(seed), dtype=gt.W_p.dtype)
    return x, (x @ gt.W_p.T).to(device).expand(K, -1, -1), (x @ gt.W_r.T).to(device).expand(K, -1, -1)


@torch.no_grad()
def evaluate(params: dict[str, Tensor], data, cfg: Config, n_samples: int = 4096, seed: int = 12345) -> Tensor:
    """Per-model reconstruction loss (K,) of the full dictionary on one fixed, seeded evaluation set of ``data``
    (any source; a GroundTruth draws fresh codes, stored activations a seeded sample of rows)."""
    source, K, device = as_source(data), params["W_E"].shape[0], params["W_E"].device
    if isinstance(source, GroundTruthSource):
        _, x_p, x_r = fixed_views(source.gt, K, n_samples, seed, device)
    else:
        x_p, x_r = (v.expand(K, -1, -1) for v in source.pool(n_samples, torch.Generator().manual_seed(seed), device))
    _, a = encode(params, x_p, cfg)
    return (x_r - decode(with_decoder(params), a, cfg)).pow(2).sum(-1).mean(1).cpu()


@torch.no_grad()
def feature_pattern(params: dict[str, Tensor], gt, cfg: Config) -> Tensor:
    """The activation pattern (K, n_q, n), bool: [k, i, d] when feature d alone (x_p = w_p^d) fires latent i of model
    k (Definition 3.1; for BatchTopK the n single-feature inputs form one batch)."""
    K = params["W_E"].shape[0]
    x_p = gt.W_p.T.to(params["W_E"]).expand(K, -1, -1)                # (K, n, n_p)
    _, a = encode(params, x_p, cfg)
    return (a != 0).transpose(1, 2)


@torch.no_grad()
def track(params: dict[str, Tensor], gt, cfg: Config) -> list[dict]:
    """Per model: M_GT(tau) and M_IP over encoder rows (the paper's) and over decoder columns, and the numbers of
    dead, monosemantic and polysemantic latents in the activation pattern."""
    from ..theory.metrics import recovery
    from ..theory.regions import pattern_counts

    P = with_decoder(params)
    F = feature_pattern(params, gt, cfg).cpu()
    return [recovery(P["W_E"][k].cpu(), P["W_D"][k].cpu(), gt.W_p, gt.W_r, cfg.tau) | pattern_counts(F[k])
            for k in range(F.shape[0])]


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


def save(state: State, path: str) -> None:
    """Write a checkpoint folder (safetensors + JSON; see :func:`sdl_paper.formats.files.save_checkpoint`)."""
    from ..formats.files import save_checkpoint
    save_checkpoint(state, path)


def load(path: str) -> State:
    """The checkpoint written by :func:`save` (tensors and JSON only: reading runs no code from the file)."""
    from ..formats.files import load_checkpoint
    return load_checkpoint(path)
