"""The training engine: K independent SDL models of the same shapes trained as one batched model.

Every tensor carries a leading model axis K (K = 1 for a single run): W_E is (K, n_q, n_p), W_D is (K, n_r, n_q),
batches are (K, B, n_p). Models never interact: the loss is a sum over models and Adam is element-wise, so a batched
run gives the same numbers as K separate runs with the same seeds (tested), at a fraction of the cost.

Methods (``Config.method``): ``relu`` (ReLU + L1), ``relu_dec`` (ReLU + L1 weighted by decoder-column norms),
``jumprelu`` (straight-through estimator, L0 penalty; Rajamanoharan et al. 2024b), ``topk`` (Gao et al. 2024),
``batchtopk`` (Bussmann et al. 2024), ``matryoshka`` (nested prefixes over BatchTopK; Bussmann et al. 2025).
Dead-latent remedies (``Config.remedy``): ``none``, ``resample`` (Anthropic 2023, see :mod:`sdl_paper.engine.resampling`)
and ``auxk`` (Gao et al. 2024).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .kernels import JumpReLUSTE, StepSTE, batchtopk_mask, sparse_topk, topk_mask  # noqa: F401 (re-exported)
from .progress import bar

METHODS = ("relu", "relu_dec", "jumprelu", "topk", "batchtopk", "matryoshka")
REMEDIES = ("none", "resample", "auxk")


@dataclass
class Config:
    """Hyperparameters of a training run; every default is commented with its meaning."""

    method: str = "topk"            # one of METHODS
    k: int = 4                      # active latents per sample (topk, batchtopk, matryoshka)
    l1: float = 1e-3                # L1 coefficient (relu, relu_dec)
    l0: float = 1e-3                # L0 coefficient (jumprelu)
    theta_init: float = 0.1         # initial JumpReLU threshold
    bandwidth: float = 0.05         # width of the JumpReLU straight-through kernel
    prefixes: tuple[int, ...] = ()  # matryoshka prefix sizes (default: n_q/8, n_q/4, n_q/2, n_q)
    remedy: str = "none"            # one of REMEDIES
    aux_k: int = 0                  # AuxK: dead latents used per sample (0: n_p // 2)
    aux_coef: float = 1 / 32        # AuxK loss coefficient
    resample_at: tuple[int, ...] = ()  # steps at which to resample dead latents
    resample_every: int = 0         # also resample every this many steps (0: never)
    dead_window: int = 500          # a latent that has not fired for this many steps is dead
    resample_pool: int = 4096       # inputs scored when choosing resampling directions
    resample_scale: float = 0.2     # norm of a resampled encoder row, as a multiple of the mean norm of the alive
                                    # rows (0.2: Bricken et al. 2023; larger values are a variant used for TopK)
    tied: bool = False              # tied SAE: W_D = W_E^T, one shared parameter (needs n_r = n_p)
    unit_decoder: bool = True       # renormalise decoder columns after every step
    sparse: bool | None = None      # topk: touch only the k active latents after the encoder's forward matmul
                                    # (None: when n_q >= 512; below that the dense path is faster)
    bias: bool = False              # encoder and decoder biases
    init_scale: float = 1.0         # norm of each decoder column at initialisation
    anchors: int = 0                # feature anchoring: number of anchored latents (0: off)
    anchor_coef: float = 0.1        # feature anchoring coefficient
    lr: float = 1e-3                # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    steps: int = 2000               # optimisation steps
    batch_size: int = 1024          # samples per step and model
    amp: str = "fp32"               # "bf16": bfloat16 autocast of the matmuls (CUDA or CPU); loss and Adam stay fp32
    log_every: int = 50             # steps between logged batch metrics (loss, L0, dead fraction)
    track_every: int = 0            # steps between ground-truth metrics (M_GT, M_IP, pattern counts); 0: off
    tau: float = 0.95               # cosine threshold of M_GT(tau)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; allowed: {', '.join(METHODS)}")
        if self.amp not in ("fp32", "bf16"):
            raise ValueError(f"amp={self.amp!r}; allowed: 'fp32', 'bf16'")
        if self.remedy not in REMEDIES:
            raise ValueError(f"remedy={self.remedy!r}; allowed: {', '.join(REMEDIES)}")
        for name in ("k", "steps", "batch_size", "log_every", "dead_window", "resample_pool"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("l1", "l0", "aux_coef", "anchor_coef", "resample_every", "aux_k", "anchors", "track_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if not (self.lr > 0 and self.theta_init > 0 and self.bandwidth > 0 and self.init_scale > 0
                and self.resample_scale > 0):
            raise ValueError("lr, theta_init, bandwidth, init_scale and resample_scale must be > 0")
        if not 0 < self.tau < 1:
            raise ValueError(f"tau={self.tau!r} must be in (0, 1)")


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


def init_state(K: int, n_p: int, n_q: int, n_r: int, cfg: Config, seeds: list[int]) -> State:
    """Parameters of K models, model k initialised from seeds[k] exactly as a K = 1 run with that seed would be."""
    if len(seeds) != K:
        raise ValueError(f"need one seed per model: got {len(seeds)} seeds for K={K}")
    # W_D is stored column-major (each decoder column contiguous), so that gathering columns is fast
    W_E, W_D = torch.empty(K, n_q, n_p), torch.empty(K, n_q, n_r).transpose(1, 2)
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed(s)
        D = torch.randn(n_r, n_q, generator=g)
        W_D[i] = cfg.init_scale * D / D.norm(dim=0, keepdim=True)
        W_E[i] = W_D[i].T if n_r == n_p else torch.randn(n_q, n_p, generator=g) * cfg.init_scale / n_p ** 0.5
    if cfg.tied and n_r != n_p:
        raise ValueError(f"tied=True needs n_r = n_p (a tied SAE); got n_r={n_r}, n_p={n_p}")
    params = {"W_E": W_E} if cfg.tied else {"W_E": W_E, "W_D": W_D}
    if cfg.bias:
        params |= {"b_E": torch.zeros(K, n_q), "b_D": torch.zeros(K, n_r)}
    if cfg.method == "jumprelu":
        params["log_theta"] = torch.full((K, n_q), float(torch.log(torch.tensor(cfg.theta_init))))
    zeros = {name: torch.zeros_like(p) for name, p in params.items()}
    return State(params, zeros, {n: z.clone() for n, z in zeros.items()}, 0,
                 torch.full((K, n_q), -1, dtype=torch.long),   # -1: never fired (see dead_mask)
                 generators=[torch.Generator().manual_seed(s + 1_000_003) for s in seeds])


def encode(params: dict[str, Tensor], x_p: Tensor, cfg: Config) -> tuple[Tensor, Tensor]:
    """(pre-activations z, codes a), both (K, B, n_q), for batches x_p (K, B, n_p)."""
    z = torch.bmm(x_p, params["W_E"].transpose(1, 2))
    if "b_E" in params:
        z = z + params["b_E"][:, None]
    if cfg.method in ("relu", "relu_dec"):
        return z, torch.relu(z)
    if cfg.method == "jumprelu":
        return z, JumpReLUSTE.apply(z, params["log_theta"].exp()[:, None], cfg.bandwidth)
    if cfg.method == "topk":
        return z, z * topk_mask(z, cfg.k)
    return z, z * batchtopk_mask(z, cfg.k)                          # batchtopk and matryoshka


def with_decoder(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``params`` with ``W_D`` present: a tied model's decoder is the view W_E^T (K, n_p, n_q) of its encoder."""
    return params if "W_D" in params else {**params, "W_D": params["W_E"].transpose(1, 2)}


def decode(params: dict[str, Tensor], a: Tensor) -> Tensor:
    """Reconstructions (K, B, n_r) of codes a (K, B, n_q)."""
    out = torch.bmm(a, params["W_D"].transpose(1, 2))
    return out + params["b_D"][:, None] if "b_D" in params else out


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the model."""


def objective(params: dict[str, Tensor], x_p: Tensor, x_r: Tensor, cfg: Config, dead: Tensor | None = None,
              anchors: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Per-model loss terms, each (K,): ``rec`` (squared error), ``penalty``, ``aux`` and their sum ``total``.

    Args:
        dead: (K, n_q) bool, the latents AuxK may use (only with remedy ``auxk``).
        anchors: ``{"A_p": (m, n_p), "A_r": (n_r, m)}`` known directions pulling the first m encoder rows and decoder
            columns (feature anchoring, with coefficient ``cfg.anchor_coef``).
    """
    K = x_p.shape[0]
    params = with_decoder(params)
    sparse = cfg.sparse if cfg.sparse is not None else params["W_E"].shape[1] >= 512
    if cfg.method == "topk" and sparse:
        z, vals, idx, x_hat = sparse_topk(params, x_p, cfg.k)
        on = (vals > 0).detach().to(vals.dtype).reshape(K, -1)
        fired = torch.zeros(K, params["W_E"].shape[1], device=x_p.device).scatter_reduce(
            1, idx.reshape(K, -1), on, reduce="amax") > 0
        l0 = (vals > 0).float().sum(-1).mean(1)
    else:
        z, a = encode(params, x_p, cfg)
        x_hat = decode(params, a)
        fired, l0 = (a != 0).any(dim=1), (a != 0).float().sum(-1).mean(1)
    if cfg.method == "matryoshka":
        n_q = a.shape[-1]
        sizes = cfg.prefixes or (n_q // 8, n_q // 4, n_q // 2, n_q)
        recs = [(x_r - decode({**params, "W_D": params["W_D"][..., :m]}, a[..., :m])).pow(2).sum(-1).mean(1)
                for m in sizes]
        rec = torch.stack(recs).mean(0)
    else:
        rec = (x_r - x_hat).pow(2).sum(-1).mean(1)
    penalty = torch.zeros(K, dtype=rec.dtype, device=rec.device)
    if cfg.method == "relu":
        penalty = cfg.l1 * a.abs().sum(-1).mean(1)
    elif cfg.method == "relu_dec":
        penalty = cfg.l1 * (a * params["W_D"].norm(dim=1)[:, None]).sum(-1).mean(1)
    elif cfg.method == "jumprelu":
        penalty = cfg.l0 * StepSTE.apply(z, params["log_theta"].exp()[:, None], cfg.bandwidth).sum(-1).mean(1)
    if anchors is not None and cfg.anchors:
        m = anchors["A_p"].shape[0]
        penalty = penalty + cfg.anchor_coef * ((params["W_E"][:, :m] - anchors["A_p"]).pow(2).sum((1, 2))
                                               + (params["W_D"][..., :m] - anchors["A_r"]).pow(2).sum((1, 2)))
    aux = torch.zeros_like(penalty)
    if cfg.remedy == "auxk" and dead is not None and bool(dead.any()):
        k_aux = min(cfg.aux_k or x_p.shape[-1] // 2, z.shape[-1])
        if not z.requires_grad:                      # the sparse TopK path chose latents without autograd
            z = torch.bmm(x_p, params["W_E"].transpose(1, 2))
            z = z + params["b_E"][:, None] if "b_E" in params else z
        z_dead = z.masked_fill(~dead[:, None], float("-inf"))
        mask = topk_mask(z_dead, k_aux) & dead[:, None]
        e_hat = torch.bmm(z * mask, params["W_D"].transpose(1, 2))   # no decoder bias in e_hat (Gao et al. 2024)
        aux = cfg.aux_coef * ((x_r - x_hat).detach() - e_hat).pow(2).sum(-1).mean(1)
    rec, penalty, aux = rec.float(), penalty.float(), aux.float()
    return {"rec": rec, "penalty": penalty, "aux": aux, "total": rec + penalty + aux, "fired": fired, "L0": l0}


def adam_step(state: State, lr: float, betas: tuple[float, float], eps: float = 1e-8) -> None:
    """One element-wise Adam update of every parameter from its .grad (bias correction by the global step)."""
    b1, b2 = betas
    t = state.step + 1
    step_size, root = lr / (1 - b1 ** t), (1 - b2 ** t) ** 0.5
    with torch.no_grad():
        for name, p in state.params.items():
            g = p.grad
            m, v = state.adam_m[name], state.adam_v[name]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, v.sqrt().div_(root).add_(eps), value=-step_size)
            p.grad = None


def sample_views(gt, state: State, batch: int, device) -> tuple[Tensor, Tensor]:
    """(x_p, x_r) of shapes (K, B, n_p), (K, B, n_r): model k's batch from its own data generator."""
    xs = [gt.coefficients.sample(batch, g, dtype=gt.W_p.dtype) for g in state.generators]
    x = torch.stack(xs).to(device)
    return x @ gt.W_p.T.to(device), x @ gt.W_r.T.to(device)


def dead_mask(state: State, window: int) -> Tensor:
    """(K, n_q) bool: latents that have not fired in any of the last ``window`` steps (none before ``window``
    steps), the same count as :func:`sdl_paper.engine.experiments.dead_by_window` on the recorded firing."""
    return (state.step - 1 - state.last_fired) >= window


def train(gt, cfg: Config, n_q: int, seeds: list[int], state: State | None = None, device: str = "cpu",
          anchors: dict[str, Tensor] | None = None, progress: bool | None = None, desc: str = "train",
          checkpoint: str | None = None, checkpoint_every: int = 0, callback=None) -> State:
    """Train len(seeds) models on ``gt`` for ``cfg.steps`` steps (continuing ``state`` when given).

    Logs per-model metrics every ``cfg.log_every`` steps into ``state.history``. ``callback(state, terms)``, if
    given, runs after every step. With ``checkpoint``, the state is saved every ``checkpoint_every`` steps and at
    the end; :func:`load` and ``train(..., state=...)`` resume it with identical results.

    Raises:
        TrainingDiverged: at the first step whose loss is not finite.
    """

    from . import distributed as dist
    from .resampling import resample

    rank, world_size = dist.world()
    if cfg.batch_size % world_size:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world_size})")
    progress = progress if rank == 0 else False
    K = len(seeds)
    state = state or init_state(K, gt.n_p, n_q, gt.n_r, cfg, seeds)
    for p in state.params.values():
        p.requires_grad_(True)
    if anchors is not None:
        anchors = {k: v.to(device) for k, v in anchors.items()}
    to_device(state, device)
    resample_steps = set(cfg.resample_at)
    steps_bar = bar(range(state.step, cfg.steps), desc=desc, show=progress)
    for _ in steps_bar:
        step = state.step
        if cfg.remedy == "resample" and step > 0 and (
                step in resample_steps or (cfg.resample_every and step % cfg.resample_every == 0)):
            resample(state, gt, cfg, device)
        x_p, x_r = sample_views(gt, state, cfg.batch_size, device)
        x_p, x_r = dist.shard(x_p), dist.shard(x_r)                       # this process's part of the global batch
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=cfg.amp == "bf16"):
            terms = objective(state.params, x_p, x_r, cfg, dead_mask(state, cfg.dead_window), anchors)
        total = dist.all_mean(terms["total"].detach().clone())
        if not torch.isfinite(total).all():
            bad = int((~torch.isfinite(total)).nonzero()[0])
            raise TrainingDiverged(f"{desc}: loss of model {bad} (seed {seeds[bad]}) is {total[bad].item()} at "
                                   f"step {step}; lower lr (now {cfg.lr}) or check the data")
        terms["total"].sum().backward()
        for p in state.params.values():
            dist.all_mean(p.grad)
        for name in ("rec", "L0"):
            terms[name] = dist.all_mean(terms[name].detach().clone())
        terms["fired"] = dist.all_any(terms["fired"])
        adam_step(state, cfg.lr, cfg.betas)
        with torch.no_grad():
            if cfg.unit_decoder:
                W_D = with_decoder(state.params)["W_D"]           # a view: tied models renormalise W_E's rows
                W_D /= W_D.norm(dim=1, keepdim=True).clamp_min(1e-12)
            state.last_fired[terms["fired"].cpu()] = step
        state.step += 1
        if step % cfg.log_every == 0 or state.step == cfg.steps:
            state.history.append({"step": step, "loss": terms["rec"].tolist(),
                                  "L0": terms["L0"].tolist(),
                                  "dead": dead_mask(state, cfg.dead_window).float().mean(1).tolist()})
            steps_bar.set_postfix(loss=f"{terms['rec'].mean().item():.4g}", refresh=False)
        if cfg.track_every and (step % cfg.track_every == 0 or state.step == cfg.steps):
            state.tracked.append({"step": step, "models": track(state.params, gt, cfg)})
        if callback is not None:
            callback(state, terms)
        if checkpoint and rank == 0 and checkpoint_every and state.step % checkpoint_every == 0:
            save(state, checkpoint)
    if checkpoint and rank == 0:
        save(state, checkpoint)
    for p in state.params.values():
        p.requires_grad_(False)
    return state


def fixed_views(gt, K: int, n: int, seed: int, device="cpu") -> tuple[Tensor, Tensor, Tensor]:
    """One seeded evaluation set shared by K models: x (n, n_features), x_p (K, n, n_p), x_r (K, n, n_r)."""
    x = gt.coefficients.sample(n, torch.Generator().manual_seed(seed), dtype=gt.W_p.dtype)
    return x, (x @ gt.W_p.T).to(device).expand(K, -1, -1), (x @ gt.W_r.T).to(device).expand(K, -1, -1)


@torch.no_grad()
def evaluate(params: dict[str, Tensor], gt, cfg: Config, n_samples: int = 4096, seed: int = 12345) -> Tensor:
    """Per-model reconstruction loss (K,) of the full dictionary on one fixed, seeded evaluation set."""
    _, x_p, x_r = fixed_views(gt, params["W_E"].shape[0], n_samples, seed, params["W_E"].device)
    _, a = encode(params, x_p, cfg)
    return (x_r - decode(with_decoder(params), a)).pow(2).sum(-1).mean(1).cpu()


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
            d[k] = d[k].detach().to(device).requires_grad_(d is state.params)
    for i, g in enumerate(state.generators):
        if g.device.type != device.type:
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=g, device=g.device))
            state.generators[i] = torch.Generator(device=device).manual_seed(seed)


def save(state: State, path: str) -> None:
    """Write the whole state (parameters, Adam moments, counters, history, generator states) to ``path``."""
    import os
    tmp = f"{path}.tmp"
    torch.save({"params": {k: v.detach().cpu() for k, v in state.params.items()},
                "adam_m": {k: v.cpu() for k, v in state.adam_m.items()},
                "adam_v": {k: v.cpu() for k, v in state.adam_v.items()}, "step": state.step,
                "last_fired": state.last_fired, "history": state.history,
                "generators": [g.get_state() for g in state.generators], "tracked": state.tracked,
                "generator_device": str(state.generators[0].device) if state.generators else "cpu",
                "resampled": state.resampled}, tmp)
    os.replace(tmp, path)   # never leaves a half-written checkpoint


def load(path: str) -> State:
    """The state saved by :func:`save`."""
    d = torch.load(path, weights_only=False)
    gens = []
    for s in d["generators"]:
        g = torch.Generator(device=d.get("generator_device", "cpu"))
        g.set_state(s)
        gens.append(g)
    return State(d["params"], d["adam_m"], d["adam_v"], d["step"], d["last_fired"], d["history"], gens, d["tracked"],
                 d.get("resampled", []))


def config_dict(cfg: Config) -> dict:
    return asdict(cfg)
