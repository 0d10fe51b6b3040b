"""One model form for every dictionary the engine trains: a dict of (K, ...) parameters plus a :class:`Config`.

K models of the same shapes are stored together: W_E (K, n_q, n_p), W_D (K, n_r, n_q) (absent when tied: the
decoder is the view W_E^T), optional biases b_E (K, n_q), b_D (K, n_r) and JumpReLU thresholds log_theta (K, n_q).
:func:`to_sdl` and :func:`from_sdl` convert one model to and from the theory's :class:`~sdl_paper.theory.framework.SDL`
module, so the theory tools (regions, minima) run on trained dictionaries.

Naming: a *method* (``Config.method``: relu, topk, ...) is a training objective and lives in :data:`METHODS`; an
*activation* sigma is a spec of the activation registry (``"topk:4"``, ``"relu>topk:1"``, see
:mod:`sdl_paper.theory.activations`). :func:`activation_spec` gives a method's sigma as such a spec.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from .kernels import JumpReLUSTE, batchtopk_mask, topk_mask

METHODS = ("relu", "relu_dec", "jumprelu", "topk", "batchtopk", "matryoshka")
REMEDIES = ("none", "resample", "auxk")
PRACTICES = ("theory", "standard")
PER_MODEL = ("l1", "l0", "lr", "init_scale", "anchor_coef")   # a float, or one value per model (batched sweeps)


@dataclass
class Config:
    """Hyperparameters of a training run (``help(Config)`` lists them; ``steps`` is a total, see resuming below).

    Attributes:
        method: training objective, one of METHODS: ``relu`` (ReLU + L1 on codes), ``relu_dec`` (ReLU + L1 weighted
            by decoder-column norms), ``jumprelu`` (straight-through estimator, L0 penalty), ``topk``,
            ``batchtopk``, ``matryoshka`` (nested prefixes over BatchTopK).
        k: active latents per sample (topk, batchtopk, matryoshka); at most n_q.
        l1: L1 coefficient (relu, relu_dec). l0: L0 coefficient (jumprelu).
        theta_init: initial JumpReLU threshold. bandwidth: width of the JumpReLU straight-through kernel.
        prefixes: matryoshka prefix sizes, increasing, the last at most n_q (default: n_q/8, n_q/4, n_q/2, n_q).
        remedy: dead-latent remedy, one of REMEDIES: ``none``, ``resample`` (Anthropic 2023), ``auxk`` (Gao et al.).
        aux_k: AuxK only: dead latents used per sample (0: n_p // 2). aux_coef: AuxK loss coefficient.
        resample_at: resample only: steps at which dead latents are resampled. resample_every: resample only:
            also every this many steps (0: never). resample_pool: inputs scored when choosing directions.
        resample_scale: norm of a resampled encoder row as a multiple of the mean alive row norm (0.2: Bricken et al.).
        dead_window: a latent that has not fired for this many steps is dead (for remedies; logged as "window_dead").
        tied: tied SAE, W_D = W_E^T (needs n_r = n_p). unit_decoder: renormalise decoder columns after every step.
        sparse: topk only: after the encoder matmul touch only the k active latents (None: when n_q >= 512).
        bias: train encoder and decoder biases. init_scale: norm of each decoder column at initialisation.
        anchors: feature anchoring: number of anchored latents (0: off). anchor_coef: its coefficient.
        lr: Adam learning rate. betas: Adam betas. steps: total optimisation steps (a resumed run continues up
            to this total). batch_size: samples per step and model.
        amp: ``fp32`` or ``bf16`` (bfloat16 autocast of the matmuls; loss and Adam stay fp32).
        log_every: steps between logged batch metrics (loss, L0, dead fraction). track_every: steps between
            ground-truth metrics (needs directions; 0: off). tau: cosine threshold of M_GT(tau).
        activation: a spec of the activation registry replacing the method's sigma, for theory experiments
            (``"relu>topk:1"``, ``"literaltopk:2"``); only with method ``relu``, whose L1 coefficient ``l1`` still
            applies (``l1=0``: plain reconstruction). Empty: the method's own sigma.
        practice: ``theory`` (as the theorems: z = W_E x + b_E) or ``standard`` (SAELens 6.54.12's forward pass:
            z = W_E (x - b_D) + b_E and, for the TopK family, pre-activations times decoder-column norms, codes
            divided by them before decoding; matryoshka sums its prefix losses; with biases, untied).
            :meth:`standard` gives SAELens's default hyperparameters too.
        subtract_b_D: standard practice only: subtract b_D from the input (SAELens's SAEs). Its transcoders do not
            (their b_D lives in the output space): ``False`` for a transcoder; a source whose target is not its
            input is refused with ``True``.
        clip_grad: clip each model's gradient norm to this value before the Adam step (0: off; SAELens: 1.0).

    ``l1``, ``l0``, ``lr``, ``init_scale`` and ``anchor_coef`` take one float for all models or a tuple with one value
    per model (len(seeds) values): a sweep over them trains as one batched run (:func:`per_model`).
    """

    method: str = "topk"
    k: int = 4
    l1: float | tuple[float, ...] = 1e-3
    l0: float | tuple[float, ...] = 1e-3
    theta_init: float = 0.1
    bandwidth: float = 0.05
    prefixes: tuple[int, ...] = ()
    remedy: str = "none"
    aux_k: int = 0
    aux_coef: float = 1 / 32
    resample_at: tuple[int, ...] = ()
    resample_every: int = 0
    dead_window: int = 500
    resample_pool: int = 4096
    resample_scale: float = 0.2
    tied: bool = False
    unit_decoder: bool = True
    sparse: bool | None = None
    bias: bool = False
    init_scale: float | tuple[float, ...] = 1.0
    anchors: int = 0
    anchor_coef: float | tuple[float, ...] = 0.1
    lr: float | tuple[float, ...] = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 2000
    batch_size: int = 1024
    amp: str = "fp32"
    log_every: int = 50
    track_every: int = 0
    tau: float = 0.95
    activation: str = ""
    practice: str = "theory"
    subtract_b_D: bool = True
    clip_grad: float = 0.0

    def __post_init__(self):
        for name in ("k", "steps", "batch_size", "log_every", "dead_window", "resample_pool", "aux_k", "anchors",
                     "resample_every", "track_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name}={v!r} must be an int")
        self.prefixes, self.resample_at = tuple(self.prefixes), tuple(self.resample_at)
        for name in PER_MODEL:
            v = getattr(self, name)
            if isinstance(v, (list, tuple)):
                if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                    raise TypeError(f"{name}={v!r} must be a float or a non-empty tuple of floats, one per model")
                setattr(self, name, tuple(float(x) for x in v))
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name}={v!r} must be a float or a tuple of floats, one per model")
        self.betas = tuple(self.betas)
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; allowed: {', '.join(METHODS)}")
        if self.amp not in ("fp32", "bf16"):
            raise ValueError(f"amp={self.amp!r}; allowed: 'fp32', 'bf16'")
        if self.remedy not in REMEDIES:
            raise ValueError(f"remedy={self.remedy!r}; allowed: {', '.join(REMEDIES)}")
        for name in ("k", "steps", "batch_size", "log_every", "dead_window", "resample_pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("l1", "l0", "aux_coef", "anchor_coef", "resample_every", "aux_k", "anchors", "track_every"):
            if min(_values(getattr(self, name))) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if not (min(_values(self.lr)) > 0 and self.theta_init > 0 and self.bandwidth > 0
                and min(_values(self.init_scale)) > 0 and self.resample_scale > 0):
            raise ValueError("lr, theta_init, bandwidth, init_scale and resample_scale must be > 0")
        if not 0 < self.tau < 1:
            raise ValueError(f"tau={self.tau!r} must be in (0, 1)")
        if (self.resample_at or self.resample_every) and self.remedy != "resample":
            raise ValueError(f"resample_at / resample_every only apply with remedy='resample' (remedy is "
                             f"{self.remedy!r}); drop them or set remedy='resample'")
        if self.aux_k and self.remedy != "auxk":
            raise ValueError(f"aux_k={self.aux_k} only applies with remedy='auxk' (remedy is {self.remedy!r})")
        if self.prefixes and self.method != "matryoshka":
            raise ValueError(f"prefixes only apply to method='matryoshka' (method is {self.method!r})")
        if list(self.prefixes) != sorted(set(self.prefixes)) or any(p < 1 for p in self.prefixes):
            raise ValueError(f"prefixes={self.prefixes} must be strictly increasing positive sizes")
        if self.activation:
            if self.method != "relu":
                raise ValueError(f"activation={self.activation!r} replaces sigma only with method='relu' (the "
                                 f"method {self.method!r} has its own sigma)")
            _sigma(self.activation)                  # a ValueError here explains what is wrong with the spec
        if self.practice not in PRACTICES:
            raise ValueError(f"practice={self.practice!r}; allowed: {', '.join(PRACTICES)}")
        if self.practice == "standard" and (self.method == "relu" or not self.bias or self.tied or self.activation):
            raise ValueError("practice='standard' (SAELens's forward pass) is implemented for methods "
                             f"{', '.join(m for m in METHODS if m != 'relu')} (SAELens's 'standard' SAE is "
                             "relu_dec) with bias=True, untied, without an activation override; got "
                             f"method={self.method!r}, bias={self.bias}, tied={self.tied}")
        if self.clip_grad < 0:
            raise ValueError(f"clip_grad={self.clip_grad!r} must be >= 0")
        if any(s < 1 for s in self.resample_at):
            raise ValueError(f"resample_at={self.resample_at} must hold steps >= 1")

    @classmethod
    def standard(cls, method: str = "topk", **overrides) -> "Config":
        """SAELens 6.54.12's defaults for ``method``, as read from its source: forward pass of the standard
        practice, biases, decoder columns of norm 0.1 at initialisation with W_E = W_D^T, no decoder
        renormalisation, Adam lr 3e-4 and betas (0.9, 0.999), gradient-norm clipping 1.0. TopK family (topk,
        batchtopk, matryoshka): AuxK with coefficient 1 and a 1000-step dead window. relu_dec (its "standard"
        SAE): L1 weighted by decoder norms, coefficient 1. jumprelu: L0 coefficient 1, initial threshold 0.01,
        bandwidth 0.05 (theta trained itself and projected to >= 0 after each step, as SAELens does)."""
        if method not in METHODS or method == "relu":
            raise ValueError(f"no standard practice for method={method!r}; allowed: "
                             f"{', '.join(m for m in METHODS if m != 'relu')}")
        base = dict(method=method, practice="standard", bias=True, init_scale=0.1, unit_decoder=False, lr=3e-4,
                    betas=(0.9, 0.999), clip_grad=1.0, dead_window=1000)
        base |= {"relu_dec": dict(l1=1.0), "jumprelu": dict(l0=1.0, theta_init=0.01, bandwidth=0.05)}.get(
            method, dict(remedy="auxk", aux_coef=1.0))
        return cls(**(base | overrides))

    def check_models(self, K: int) -> None:
        """Refuse per-model values (a tuple) whose length is not the number of models K."""
        for name in PER_MODEL:
            v = getattr(self, name)
            if isinstance(v, tuple) and len(v) != K:
                raise ValueError(f"{name} has {len(v)} values but {K} models are trained (one seed each); give "
                                 f"one float or {K} values")

    def check_sizes(self, n_p: int, n_q: int, n_r: int) -> None:
        """Refuse what cannot run with these sizes (k or prefixes beyond n_q, a tied model with n_r != n_p)."""
        if self.method in ("topk", "batchtopk", "matryoshka") and self.k > n_q:
            raise ValueError(f"k={self.k} exceeds the number of latents n_q={n_q}")
        if self.activation and any(getattr(m, "k", 0) > n_q for m in _sigma(self.activation).modules()):
            raise ValueError(f"activation {self.activation!r} keeps more latents than n_q={n_q}")
        if self.prefixes and self.prefixes[-1] > n_q:
            raise ValueError(f"matryoshka prefixes {self.prefixes} exceed n_q={n_q}")
        if self.tied and n_r != n_p:
            raise ValueError(f"tied=True needs n_r = n_p (a tied SAE); got n_r={n_r}, n_p={n_p}")
        if self.practice == "standard" and self.subtract_b_D and n_r != n_p:
            raise ValueError(f"practice='standard' subtracts b_D from the input, so it needs n_r = n_p (an SAE); "
                             f"got n_p={n_p}, n_r={n_r}: set subtract_b_D=False for a transcoder")

    def to_dict(self) -> dict:
        """JSON-able fields (tuples as lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"unknown Config fields {unknown}; allowed: {', '.join(sorted(known))}")
        return cls(**d)


def _values(v) -> tuple:
    return v if isinstance(v, tuple) else (v,)


def per_model(value, like: Tensor) -> Tensor | float:
    """A per-model hyperparameter as a (K,) tensor on ``like``'s device (a float stays a float)."""
    return torch.tensor(value, dtype=like.dtype, device=like.device) if isinstance(value, tuple) else value


@functools.lru_cache(maxsize=64)
def _sigma(spec: str):
    from ..theory.activations import make_activation
    return make_activation(spec)


def activation_spec(cfg: Config) -> str:
    """The method's sigma as an activation-registry spec (JumpReLU: the initial threshold; see :func:`to_sdl`)."""
    if cfg.activation:
        return cfg.activation
    return {"relu": "relu", "relu_dec": "relu", "jumprelu": f"jumprelu:{cfg.theta_init}", "topk": f"topk:{cfg.k}",
            "batchtopk": f"batchtopk:{cfg.k}", "matryoshka": f"batchtopk:{cfg.k}"}[cfg.method]


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




def init_state(K: int, n_p: int, n_q: int, n_r: int, cfg: Config, seeds: list[int]) -> State:
    """Parameters of K models, model k initialised from seeds[k] exactly as a K = 1 run with that seed would be."""
    if len(seeds) != K:
        raise ValueError(f"need one seed per model: got {len(seeds)} seeds for K={K}")
    # W_D is stored column-major (each decoder column contiguous), so that gathering columns is fast
    W_E, W_D = torch.empty(K, n_q, n_p), torch.empty(K, n_q, n_r).transpose(1, 2)
    cfg.check_models(K)
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed(s)
        D = torch.randn(n_r, n_q, generator=g)
        scale = cfg.init_scale[i] if isinstance(cfg.init_scale, tuple) else cfg.init_scale
        W_D[i] = scale * D / D.norm(dim=0, keepdim=True)
        W_E[i] = W_D[i].T if n_r == n_p else torch.randn(n_q, n_p, generator=g) * scale / n_p ** 0.5
    if cfg.tied and n_r != n_p:
        raise ValueError(f"tied=True needs n_r = n_p (a tied SAE); got n_r={n_r}, n_p={n_p}")
    params = {"W_E": W_E} if cfg.tied else {"W_E": W_E, "W_D": W_D}
    if cfg.bias:
        params |= {"b_E": torch.zeros(K, n_q), "b_D": torch.zeros(K, n_r)}
    if cfg.method == "jumprelu" and cfg.practice == "standard":      # SAELens trains theta itself, kept >= 0
        params["theta"] = torch.full((K, n_q), float(cfg.theta_init))
    elif cfg.method == "jumprelu":
        params["log_theta"] = torch.full((K, n_q), float(torch.log(torch.tensor(cfg.theta_init))))
    zeros = {name: torch.zeros_like(p) for name, p in params.items()}
    return State(params, zeros, {n: z.clone() for n, z in zeros.items()}, 0,
                 torch.full((K, n_q), -1, dtype=torch.long),   # -1: never fired (see dead_mask)
                 generators=[torch.Generator().manual_seed(s + 1_000_003) for s in seeds])


def row_major(*ts: Tensor) -> tuple[Tensor, ...]:
    """The same tensors, transposed (last two axes) together when the first is column-major (as W_D is stored):
    element-wise work (Adam, an all-reduce) can then run on contiguous views of the same memory."""
    p = ts[0]
    if p.ndim >= 2 and not p.is_contiguous() and p.transpose(-1, -2).is_contiguous():
        return tuple(t.transpose(-1, -2) for t in ts)
    return ts


def rescaled(cfg: Config) -> bool:
    """Standard-practice TopK family: pre-activations times the decoder-column norms (SAELens's
    rescale_acts_by_decoder_norm, on by default for its TopK, BatchTopK and Matryoshka trainers)."""
    return cfg.practice == "standard" and cfg.method in ("topk", "batchtopk", "matryoshka")


def encode(params: dict[str, Tensor], x_p: Tensor, cfg: Config) -> tuple[Tensor, Tensor]:
    """(pre-activations z, codes a), both (K, B, n_q), for batches x_p (K, B, n_p)."""
    if cfg.practice == "standard" and cfg.subtract_b_D:
        x_p = x_p - params["b_D"][:, None]          # SAELens: b_dec subtracted from the input
    z = torch.bmm(x_p, params["W_E"].transpose(1, 2))
    if "b_E" in params:
        z = z + params["b_E"][:, None]
    if rescaled(cfg):
        z = z * params["W_D"].norm(dim=1)[:, None]    # SAELens: rescale_acts_by_decoder_norm
    if cfg.activation:                    # per model: a batch-coupled sigma must not mix the K models
        sigma = _sigma(cfg.activation)
        return z, torch.stack([sigma(z[k]) for k in range(z.shape[0])])
    if cfg.method in ("relu", "relu_dec"):
        return z, torch.relu(z)
    if cfg.method == "jumprelu":
        return z, JumpReLUSTE.apply(z, thresholds(params)[:, None], cfg.bandwidth)
    if cfg.method == "topk":
        return z, z * topk_mask(z, cfg.k)
    return z, z * batchtopk_mask(z, cfg.k)                          # batchtopk and matryoshka


def thresholds(params: dict[str, Tensor]) -> Tensor:
    """JumpReLU thresholds theta (K, n_q): trained as log theta (theory practice) or as theta (standard)."""
    return params["theta"] if "theta" in params else params["log_theta"].exp()


def with_decoder(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``params`` with ``W_D`` present: a tied model's decoder is the view W_E^T (K, n_p, n_q) of its encoder."""
    return params if "W_D" in params else {**params, "W_D": params["W_E"].transpose(1, 2)}


def decode(params: dict[str, Tensor], a: Tensor, cfg: Config | None = None) -> Tensor:
    """Reconstructions (K, B, n_r) of codes a (K, B, n_q) (standard-practice TopK: codes divided by the decoder
    norms first, as SAELens does)."""
    if cfg is not None and rescaled(cfg):
        a = a / params["W_D"].norm(dim=1)[:, None].clamp_min(1e-12)
    out = torch.bmm(a, params["W_D"].transpose(1, 2))
    return out + params["b_D"][:, None] if "b_D" in params else out




def dead_mask(state: State, window: int) -> Tensor:
    """(K, n_q) bool: latents that have not fired in any of the last ``window`` steps (none before ``window``
    steps), the same count as :func:`sdl_paper.engine.experiments.dead_by_window` on the recorded firing."""
    return (state.step - 1 - state.last_fired) >= window


def fold_standard(params: dict[str, Tensor], cfg: Config) -> dict[str, Tensor]:
    """Parameters of the plain form (z = W_E x + b_E, x_hat = W_D a + b_D) computing the same codes and
    reconstructions as a standard-practice dictionary."""
    W_E, W_D, b_E, b_D = params["W_E"], params["W_D"], params["b_E"], params["b_D"]
    if cfg.subtract_b_D:
        b_E = b_E - torch.einsum("kqp,kp->kq", W_E, b_D)
    if rescaled(cfg):
        n = W_D.norm(dim=1)                                           # (K, n_q)
        W_E, b_E, W_D = W_E * n[..., None], b_E * n, W_D / n[:, None].clamp_min(1e-12)
    out = {**params, "W_E": W_E.contiguous(), "W_D": W_D.contiguous(), "b_E": b_E.contiguous()}
    if "theta" in out:                                     # the plain form stores log theta (theta 0: a ReLU)
        out["log_theta"] = out.pop("theta").clamp_min(1e-12).log()
    return out


def sizes(params: dict[str, Tensor]) -> tuple[int, int, int, int]:
    """(K, n_p, n_q, n_r) of a parameter dict."""
    K, n_q, n_p = params["W_E"].shape
    return K, n_p, n_q, with_decoder(params)["W_D"].shape[1]


def to_sdl(params: dict[str, Tensor], cfg: Config, k: int = 0):
    """Model ``k`` of ``params`` as an :class:`~sdl_paper.theory.framework.SDL` computing the same codes
    (JumpReLU: its trained per-latent thresholds)."""
    from ..theory.activations import JumpReLU
    from ..theory.framework import SDL

    _, n_p, n_q, n_r = sizes(params)
    m = SDL(n_p, n_q, n_r, activation=activation_spec(cfg) if cfg.method != "jumprelu" else "relu", tied=cfg.tied,
            bias="b_E" in params)
    with torch.no_grad():
        m.W_E.copy_(params["W_E"][k])
        if not cfg.tied:
            m._W_D.copy_(params["W_D"][k])
        if "b_E" in params:
            m.b_E.copy_(params["b_E"][k])
            m.b_D.copy_(params["b_D"][k])
    if cfg.method == "jumprelu":
        m.sigma, m.activation_spec = JumpReLU(thresholds(params)[k].detach().cpu()), "jumprelu (per latent)"
    return m


def from_sdl(model, cfg: Config) -> dict[str, Tensor]:
    """A K = 1 parameter dict from an SDL module; ``cfg`` must describe its activation (checked)."""
    spec = getattr(model, "activation_spec", "")
    if cfg.method != "jumprelu" and spec != activation_spec(cfg):
        raise ValueError(f"the SDL's activation {spec!r} is not the method's {activation_spec(cfg)!r}")
    if bool(model.tied) != cfg.tied:
        raise ValueError(f"the SDL has tied={model.tied} but cfg.tied={cfg.tied}")
    p = {"W_E": model.W_E.detach().clone()[None]}
    if not cfg.tied:
        p["W_D"] = model.W_D.detach().clone()[None]
    if model.b_E is not None:
        p |= {"b_E": model.b_E.detach().clone()[None], "b_D": model.b_D.detach().clone()[None]}
    if cfg.method == "jumprelu":
        theta = torch.as_tensor(model.sigma.theta).expand(model.n_q).clamp_min(1e-12)
        p["log_theta"] = theta.log()[None].clone()
    return p


@dataclass
class Dictionary:
    """Trained dictionaries as users handle them: K models' parameters, their Config and provenance.

    ``Dictionary.from_state(state)`` after training; :func:`sdl_paper.formats.files.save_dictionary` and
    ``load_dictionary`` write and read it as safetensors + JSON.
    """

    params: dict[str, Tensor]
    cfg: Config
    seeds: list[int] = field(default_factory=list)
    meta: dict = field(default_factory=dict)   # step, data source, and for imports where they came from

    @classmethod
    def from_state(cls, state: State, cfg: Config | None = None) -> "Dictionary":
        cfg = cfg or Config.from_dict(state.config)
        params = {k: v.detach().cpu().clone() for k, v in state.params.items()}
        meta = {"step": state.step, "source": state.source}
        if cfg.practice == "standard":
            params, meta["trained_with"] = fold_standard(params, cfg), cfg.to_dict()
            cfg = Config(**(cfg.to_dict() | {"practice": "theory", "remedy": "none", "aux_k": 0}))
        return cls(params, cfg, list(state.seeds), meta)

    @property
    def sizes(self) -> dict[str, int]:
        K, n_p, n_q, n_r = sizes(self.params)
        return {"K": K, "n_p": n_p, "n_q": n_q, "n_r": n_r}

    def model(self, k: int = 0) -> dict[str, Tensor]:
        """Model k's parameters with a model axis of 1."""
        if not 0 <= k < self.sizes["K"]:
            raise IndexError(f"model {k} does not exist: this file holds {self.sizes['K']} models")
        return {name: p[k:k + 1] for name, p in self.params.items()}

    @torch.no_grad()
    def encode(self, x_p: Tensor, k: int = 0) -> Tensor:
        """Codes (B, n_q) of model k for inputs x_p (B, n_p)."""
        if x_p.ndim != 2 or x_p.shape[1] != self.sizes["n_p"]:
            raise ValueError(f"inputs must be (B, n_p={self.sizes['n_p']}); got {tuple(x_p.shape)}")
        return encode(self.model(k), x_p.to(self.params["W_E"])[None], self.cfg)[1][0]

    @torch.no_grad()
    def decode(self, a: Tensor, k: int = 0) -> Tensor:
        """Reconstructions (B, n_r) of codes a (B, n_q) by model k."""
        return decode(with_decoder(self.model(k)), a.to(self.params["W_E"])[None])[0]

    def to_sdl(self, k: int = 0):
        """Model k as an SDL module (see :func:`to_sdl`)."""
        return to_sdl(self.params, self.cfg, k)
