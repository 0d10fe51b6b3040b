"""The configuration of a training run, in parts: the model, the optimiser and schedule, the dead-latent remedies,
anchoring and logging. Each part is a small frozen dataclass that validates its own fields; :class:`Config`
holds one of each, reads every field flat (``cfg.k``, ``cfg.lr``) and is built flat too
(``Config(method="topk", k=8, lr=3e-4)``), so files and call sites need no knowledge of the parts.

The two training practices are named constructors of the whole configuration: :meth:`Config.standard` (SAELens
6.54.12's forward pass and default hyperparameters, read from its source) and :meth:`Config.theory` (as the
theorems: z = W_E x + b_E). A Config built flat without ``practice`` is the standard one (``Config(k=8)`` equals
``Config.standard("topk", k=8)``); the book's chapters ask for the theory practice by name where they mean it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from . import methods

PRACTICES = ("theory", "standard")
LR_SCHEDULERS = ("constant", "cosineannealing")
NORMALIZATIONS = ("none", "expected_average_only_in")
REMEDIES = ("none", "resample", "auxk", "auxk_input")
AUXK = ("auxk", "auxk_input")   # the remedies with an auxiliary loss on the dead latents
PER_MODEL = ("l1", "l0", "lr", "init_scale", "anchor_coef")   # a float, or one value per model (batched sweeps)


STANDARD_METHODS = tuple(n for n, m in methods.METHODS.items() if m.standard is not None)
# SAELens 6.54.12's defaults common to every method of the standard practice (the method's own are in methods.py)
STANDARD_BASE = dict(bias=True, init_scale=0.1, unit_decoder=False, lr=3e-4, betas=(0.9, 0.999), clip_grad=1.0,
                     dead_window=1000)


def practice_defaults(practice: str, method: str) -> dict:
    """The flat field values a practice gives ``method`` where the call leaves them out (theory: the dataclass
    defaults, so nothing)."""
    if practice != "standard" or method not in STANDARD_METHODS:
        return {}
    return STANDARD_BASE | methods.METHODS[method].standard


def _ints(part, *names: str, least: int = 0) -> None:
    for name in names:
        v = getattr(part, name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}={v!r} must be an int")
        if v < least:
            raise ValueError(f"{name}={v!r} must be >= {least}")


def _floats(part, *names: str) -> None:
    """Normalise per-model values (PER_MODEL) to a float or a tuple of floats; refuse NaN and infinities."""
    for name in names:
        v = getattr(part, name)
        if isinstance(v, (list, tuple)):
            if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise TypeError(f"{name}={v!r} must be a float or a non-empty tuple of floats, one per model")
            object.__setattr__(part, name, tuple(float(x) for x in v))
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name}={v!r} must be a float or a tuple of floats, one per model")
        if not all(math.isfinite(x) for x in _values(getattr(part, name))):
            raise ValueError(f"{name}={v!r} must be finite (no NaN or infinity)")


def _scalars(part, *names: str) -> None:
    """Fields that take one finite float."""
    for name in names:
        v = getattr(part, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{name}={v!r} must be a finite float")
        object.__setattr__(part, name, float(v))


def _bools(part, *names: str, none: tuple[str, ...] = ()) -> None:
    """Fields that take True or False (a string such as "False" is refused: it would read as true)."""
    for name in names:
        v = getattr(part, name)
        if not isinstance(v, bool) and not (v is None and name in none):
            raise TypeError(f"{name}={v!r} must be True or False" + (" or None" if name in none else ""))


def _strings(part, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(part, name), str):
            raise TypeError(f"{name}={getattr(part, name)!r} must be a string")


def _values(v) -> tuple:
    return v if isinstance(v, tuple) else (v,)


@dataclass(frozen=True)
class ModelConfig:
    """What is trained: the method (:mod:`sdl_paper.model.methods`), its coefficients, the model's form and the
    practice of its forward pass."""

    method: str = "topk"
    k: int = 4
    l1: float | tuple[float, ...] = 1e-3
    l0: float | tuple[float, ...] = 1e-3
    l1_warm_up_steps: int = 0
    theta_init: float = 0.1
    bandwidth: float = 0.05
    prefixes: tuple[int, ...] = ()
    k_levels: tuple[int, ...] = ()
    activation: str = ""
    tied: bool = False
    bias: bool = False
    init_scale: float | tuple[float, ...] = 1.0
    unit_decoder: bool = True
    sparse: bool | None = None
    practice: str = "theory"
    subtract_b_D: bool = True
    normalize_activations: str = "none"

    def __post_init__(self):
        _ints(self, "k", least=1)
        _ints(self, "l1_warm_up_steps")
        _floats(self, "l1", "l0", "init_scale")
        _scalars(self, "theta_init", "bandwidth")
        _bools(self, "tied", "bias", "unit_decoder", "subtract_b_D", "sparse", none=("sparse",))
        _strings(self, "method", "activation", "practice", "normalize_activations")
        if self.normalize_activations not in NORMALIZATIONS:
            raise ValueError(f"normalize_activations={self.normalize_activations!r}; allowed: "
                             f"{', '.join(NORMALIZATIONS)}")
        if self.normalize_activations != "none" and self.tied:
            raise ValueError("normalize_activations with tied=True: folding the scale into W_E and W_D on saving "
                             "would untie them")
        for name in ("prefixes", "k_levels"):
            if not isinstance(getattr(self, name), (list, tuple)) or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in getattr(self, name)):
                raise TypeError(f"{name}={getattr(self, name)!r} must be a list of ints")
        object.__setattr__(self, "prefixes", tuple(self.prefixes))
        object.__setattr__(self, "k_levels", tuple(self.k_levels))
        m = methods.get(self.method)
        if min(_values(self.l1) + _values(self.l0)) < 0:
            raise ValueError(f"l1={self.l1!r} and l0={self.l0!r} must be >= 0")
        if not (self.theta_init > 0 and self.bandwidth > 0 and min(_values(self.init_scale)) > 0):
            raise ValueError("theta_init, bandwidth and init_scale must be > 0")
        if self.l1_warm_up_steps and type(m).penalty is methods.Method.penalty:
            raise ValueError(f"l1_warm_up_steps={self.l1_warm_up_steps} warms up a sparsity penalty; method "
                             f"{self.method!r} has none (it applies to relu, relu_dec and jumprelu)")
        if self.prefixes and not m.nested:
            raise ValueError(f"prefixes only apply to method='matryoshka' (method is {self.method!r})")
        if list(self.prefixes) != sorted(set(self.prefixes)) or any(p < 1 for p in self.prefixes):
            raise ValueError(f"prefixes={self.prefixes} must be strictly increasing positive sizes")
        if self.k_levels and not m.multi_k:
            raise ValueError(f"k_levels only apply to method='matryoshka_k' (method is {self.method!r})")
        if self.k_levels and (list(self.k_levels) != sorted(set(self.k_levels)) or self.k_levels[0] < 1
                              or self.k_levels[-1] != self.k):
            raise ValueError(f"k_levels={self.k_levels} must be strictly increasing positive values ending at "
                             f"k={self.k}")
        if self.activation:
            if not m.overridable:
                raise ValueError(f"activation={self.activation!r} replaces sigma only with method='relu' (the "
                                 f"method {self.method!r} has its own sigma)")
            methods._sigma(self.activation)          # a ValueError here explains what is wrong with the spec
        if self.practice not in PRACTICES:
            raise ValueError(f"practice={self.practice!r}; allowed: {', '.join(PRACTICES)}")
        if self.practice == "standard" and (m.standard is None or not self.bias or self.tied or self.activation):
            raise ValueError("practice='standard' (SAELens's forward pass, the default) is implemented for methods "
                             f"{', '.join(STANDARD_METHODS)} (SAELens's 'standard' SAE is "
                             "relu_dec) with bias=True, untied, without an activation override; got "
                             f"method={self.method!r}, bias={self.bias}, tied={self.tied}, activation="
                             f"{self.activation!r}; for the theorems' forward pass use Config.theory(...) "
                             "(practice='theory')")


@dataclass(frozen=True)
class OptimConfig:
    """How it is trained: Adam, the number of steps (a total: a resumed run continues up to it), the batch."""

    lr: float | tuple[float, ...] = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 2000
    batch_size: int = 1024
    clip_grad: float = 0.0
    amp: str = "fp32"
    lr_scheduler_name: str = "constant"
    lr_warm_up_steps: int = 0
    lr_decay_steps: int = 0
    lr_end: float | None = None

    def __post_init__(self):
        _ints(self, "steps", "batch_size", least=1)
        _floats(self, "lr")
        _scalars(self, "clip_grad")
        b = self.betas
        if (not isinstance(b, (list, tuple)) or len(b) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1 for x in b)):
            raise ValueError(f"betas={b!r} must be two floats in [0, 1) (Adam's beta1, beta2)")
        object.__setattr__(self, "betas", tuple(float(x) for x in b))
        if min(_values(self.lr)) <= 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        if self.amp not in ("fp32", "bf16"):
            raise ValueError(f"amp={self.amp!r}; allowed: 'fp32', 'bf16'")
        if self.clip_grad < 0:
            raise ValueError(f"clip_grad={self.clip_grad!r} must be >= 0")
        _ints(self, "lr_warm_up_steps", "lr_decay_steps")
        if self.lr_scheduler_name not in LR_SCHEDULERS:
            raise ValueError(f"lr_scheduler_name={self.lr_scheduler_name!r}; allowed: {', '.join(LR_SCHEDULERS)}")
        if self.lr_warm_up_steps + self.lr_decay_steps > self.steps:
            raise ValueError(f"lr_warm_up_steps + lr_decay_steps = {self.lr_warm_up_steps + self.lr_decay_steps} "
                             f"exceeds steps={self.steps}")
        if self.lr_end is not None:
            _scalars(self, "lr_end")
            if self.lr_end < 0 or isinstance(self.lr, tuple):
                raise ValueError(f"lr_end={self.lr_end!r} must be >= 0, and None (each model's lr / 10) when lr "
                                 "holds one value per model")
            if self.lr_decay_steps and self.lr_scheduler_name != "constant" and self.lr_end == 0:
                raise ValueError("lr_decay_steps with lr_end=0 would decay from 0 to 0 (as SAELens refuses)")


@dataclass(frozen=True)
class RemedyConfig:
    """Dead latents: the window that defines them and the remedy applied to them."""

    remedy: str = "none"
    dead_window: int = 500
    aux_k: int = 0
    aux_coef: float = 1 / 32
    resample_at: tuple[int, ...] = ()
    resample_every: int = 0
    resample_pool: int = 4096
    resample_scale: float = 0.2

    def __post_init__(self):
        _ints(self, "dead_window", "resample_pool", least=1)
        _ints(self, "aux_k", "resample_every")
        _scalars(self, "aux_coef", "resample_scale")
        if not isinstance(self.resample_at, (list, tuple)):
            raise TypeError(f"resample_at={self.resample_at!r} must be a list of steps")
        if self.remedy == "resample" and not (self.resample_at or self.resample_every):
            raise ValueError("remedy='resample' needs a schedule: resample_at=[steps] and/or resample_every=N")
        object.__setattr__(self, "resample_at", tuple(self.resample_at))
        if self.remedy not in REMEDIES:
            raise ValueError(f"remedy={self.remedy!r}; allowed: {', '.join(REMEDIES)}")
        if self.aux_coef < 0 or not self.resample_scale > 0:
            raise ValueError(f"aux_coef={self.aux_coef!r} must be >= 0 and resample_scale="
                             f"{self.resample_scale!r} > 0")
        if (self.resample_at or self.resample_every) and self.remedy != "resample":
            raise ValueError(f"resample_at / resample_every only apply with remedy='resample' (remedy is "
                             f"{self.remedy!r}); drop them or set remedy='resample'")
        if self.aux_k and self.remedy not in AUXK:
            raise ValueError(f"aux_k={self.aux_k} only applies with remedy in {AUXK} (remedy is {self.remedy!r})")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in self.resample_at):
            raise ValueError(f"resample_at={self.resample_at} must hold steps >= 1")


@dataclass(frozen=True)
class AnchorConfig:
    """Feature anchoring: the first ``anchors`` latents pulled toward known directions."""

    anchors: int = 0
    anchor_coef: float | tuple[float, ...] = 0.1

    def __post_init__(self):
        _ints(self, "anchors")
        _floats(self, "anchor_coef")
        if min(_values(self.anchor_coef)) < 0:
            raise ValueError(f"anchor_coef={self.anchor_coef!r} must be >= 0")


@dataclass(frozen=True)
class LogConfig:
    """What the run records: batch metrics every ``log_every`` steps, ground-truth metrics every ``track_every``."""

    log_every: int = 50
    track_every: int = 0
    tau: float = 0.95

    def __post_init__(self):
        _ints(self, "log_every", least=1)
        _ints(self, "track_every")
        _scalars(self, "tau")
        if not 0 < self.tau < 1:
            raise ValueError(f"tau={self.tau!r} must be in (0, 1)")


PARTS = {"model": ModelConfig, "optim": OptimConfig, "remedies": RemedyConfig, "anchoring": AnchorConfig,
         "logging": LogConfig}
FIELDS = {f.name: part for part, cls in PARTS.items() for f in fields(cls)}   # field -> its part


class Config:
    """Hyperparameters of a training run, in five parts (``cfg.model``, ``cfg.optim``, ``cfg.remedies``,
    ``cfg.anchoring``, ``cfg.logging``); every field is also read flat (``cfg.k``) and given flat
    (``Config(method="topk", k=8)``), or a part is given whole (``Config(optim=OptimConfig(lr=3e-4))``).
    A Config is immutable: :meth:`replace` gives a changed copy.

    Model (:class:`ModelConfig`):
        method: training objective, one of :data:`sdl_paper.model.methods.METHODS`: ``relu`` (ReLU + L1 on
            codes), ``relu_dec`` (ReLU + L1 weighted by decoder-column norms), ``jumprelu`` (straight-through
            estimator, L0 penalty), ``topk``, ``batchtopk``, ``matryoshka`` (nested prefixes over BatchTopK, as
            Bussmann et al.), ``matryoshka_k`` (the paper's eq. 9: TopK losses at several k over the whole
            dictionary).
        k: active latents per sample (topk, batchtopk, matryoshka, matryoshka_k); at most n_q.
        l1: L1 coefficient (relu, relu_dec). l0: L0 coefficient (jumprelu). l1_warm_up_steps: the sparsity
            penalty (L1 or L0) grows linearly over this many first steps, (t + 1) / V (SAELens's name; 0: off).
        theta_init: initial JumpReLU threshold. bandwidth: width of the JumpReLU straight-through kernel.
        prefixes: matryoshka prefix sizes, increasing, the last at most n_q (default: n_q/8, n_q/4, n_q/2, n_q).
        k_levels: matryoshka_k's values of k, increasing, the last equal to k (default: k/4, k/2, k, rounded
            up, without repeats); its loss is their reconstruction errors' mean (the paper's weights lambda_i are
            not given: equal, ours).
        activation: a spec of the activation registry replacing the method's sigma, for theory experiments
            (``"relu>topk:1"``, ``"literaltopk:2"``); only with method ``relu``, whose L1 coefficient ``l1`` still
            applies (``l1=0``: plain reconstruction). Empty: the method's own sigma.
        tied: tied SAE, W_D = W_E^T (needs n_r = n_p). bias: train encoder and decoder biases.
        init_scale: norm of each decoder column at initialisation. unit_decoder: renormalise decoder columns after
            every step. sparse: topk only: after the encoder matmul touch only the k active latents (None: when
            n_q >= 512).
        practice: ``standard`` (the default of a flat Config; SAELens 6.54.12's forward pass and, for fields
            left out, its defaults: :func:`practice_defaults`) or ``theory`` (as the theorems: z = W_E x + b_E,
            the dataclass defaults below). Standard: z = W_E (x - b_D) + b_E and, for the TopK family,
            pre-activations times decoder-column norms, codes divided by them before decoding; matryoshka sums its
            prefix losses; with biases, untied.
        subtract_b_D: standard practice only: subtract b_D from the input (SAELens's SAEs). Its transcoders do not
            (their b_D lives in the output space): ``False`` for a transcoder.
        normalize_activations: ``none`` or ``expected_average_only_in`` (SAELens's name): inputs (and targets) are
            multiplied during training by sqrt(n / E||x||^2), estimated once on a sample of the data, so their mean
            squared norm is their width; the factors are folded into the weights when the dictionary is made
            (:meth:`Dictionary.from_state`), so the saved dictionary works on raw activations.
    Optimiser and schedule (:class:`OptimConfig`):
        lr: Adam learning rate. betas: Adam betas. steps: total optimisation steps (a resumed run continues up
            to this total). batch_size: samples per step and model. clip_grad: clip each model's gradient norm
            to this value before the Adam step (0: off; SAELens: 1.0). amp: ``fp32`` or ``bf16`` (bfloat16
            autocast of the matmuls; loss and Adam stay fp32). lr_scheduler_name: ``constant`` or
            ``cosineannealing`` (to lr_end) between the warm-up and the decay. lr_warm_up_steps: linear warm-up
            from lr / W. lr_decay_steps: linear decay to 0 over the last D steps. lr_end: the cosine's end and
            the decay's start for cosineannealing (None: lr / 10). Names as in SAELens; the closed forms are in
            :mod:`sdl_paper.training.schedule`.
    Dead-latent remedies (:class:`RemedyConfig`):
        remedy: ``none``, ``resample`` (Anthropic 2023), ``auxk`` (Gao et al. 2024: the dead latents reconstruct
            the residual x_r - x_hat through W_D), ``auxk_input`` (the paper's eq. 8: they reconstruct x_p through a
            separate decoder W_D', the parameter ``W_aux`` (K, n_p, n_q), trained with the model and not part of
            the dictionary it yields).
        dead_window: a latent that has not fired for this many steps is dead (for remedies; logged as
            "window_dead"). aux_k: AuxK only: dead latents used per sample (0: n_p // 2). aux_coef: AuxK loss
            coefficient. resample_at: resample only: steps at which dead latents are resampled. resample_every:
            resample only: also every this many steps (0: never). resample_pool: inputs scored when choosing
            directions. resample_scale: norm of a resampled encoder row as a multiple of the mean alive row norm
            (0.2: Bricken et al.).
    Anchoring (:class:`AnchorConfig`):
        anchors: feature anchoring: number of anchored latents (0: off). anchor_coef: its coefficient.
    Logging (:class:`LogConfig`):
        log_every: steps between logged batch metrics (loss, L0, dead fraction). track_every: steps between
            ground-truth metrics (needs directions; 0: off). tau: cosine threshold of M_GT(tau).

    ``l1``, ``l0``, ``lr``, ``init_scale`` and ``anchor_coef`` take one float for all models or a tuple with one value
    per model (len(seeds) values): a sweep over them trains as one batched run.
    """

    __slots__ = tuple(PARTS)

    def __init__(self, *, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 remedies: RemedyConfig | None = None, anchoring: AnchorConfig | None = None,
                 logging: LogConfig | None = None, **flat):
        if unknown := sorted(set(flat) - set(FIELDS)):
            raise TypeError(f"unknown Config fields {unknown}; allowed: {', '.join(FIELDS)}")
        given = {"model": model, "optim": optim, "remedies": remedies, "anchoring": anchoring, "logging": logging}
        if model is None:                   # built flat: the practice (standard unless given) fills its defaults
            flat = {"practice": "standard"} | flat
            defaults = practice_defaults(flat["practice"], flat.get("method", ModelConfig.method))
            flat = {k: v for k, v in defaults.items() if given[FIELDS[k]] is None} | flat
        for part, cls in PARTS.items():
            kw = {k: v for k, v in flat.items() if FIELDS[k] == part}
            if given[part] is not None and kw:
                raise TypeError(f"give the {part} part whole or by its fields, not both ({', '.join(kw)})")
            if given[part] is not None and not isinstance(given[part], cls):
                raise TypeError(f"{part}= must be a {cls.__name__}, got {type(given[part]).__name__}")
            object.__setattr__(self, part, given[part] if given[part] is not None else cls(**kw))
        if self.remedy == "auxk_input" and self.sparse:
            raise ValueError("remedy='auxk_input' trains on the dense path only: set sparse=None or False")
        if "k" in flat and flat["k"] != ModelConfig.k and not self.impl.uses_k:
            users = ", ".join(n for n, m in methods.METHODS.items() if m.uses_k)
            raise ValueError(f"k={flat['k']!r} has no effect with method={self.method!r}; k applies to {users} "
                             "(a TopK activation on a ReLU method: activation='topk:K')")

    def __getattr__(self, name: str):
        part = FIELDS.get(name)
        if part is None:
            raise AttributeError(f"Config has no field {name!r}")
        return getattr(object.__getattribute__(self, part), name)

    def __setattr__(self, name, value):
        raise AttributeError(f"Config is immutable: use cfg.replace({name}=...)")

    def __eq__(self, other) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        """``Config(practice=..., method=..., <fields that differ from that practice's defaults>)``."""
        default = Config(practice=self.practice, method=self.method).to_dict() if (
            self.practice == "theory" or self.method in STANDARD_METHODS) else {}
        head = {"practice": self.practice, "method": self.method}
        rest = {k: v for k, v in self.to_dict().items() if k not in head and v != default.get(k, object())}
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in (head | rest).items()) + ")"

    def __getstate__(self):
        return self.to_dict()

    def __setstate__(self, state):
        Config.__init__(self, **state)

    @property
    def impl(self) -> methods.Method:
        """The registry object of :attr:`method` (:class:`sdl_paper.model.methods.Method`)."""
        return methods.METHODS[self.model.method]

    @property
    def rescaled(self) -> bool:
        """Standard-practice TopK family: pre-activations times the decoder-column norms (SAELens's
        rescale_acts_by_decoder_norm, on by default for its TopK, BatchTopK and Matryoshka trainers)."""
        return self.practice == "standard" and self.impl.ranks

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` (flat fields)."""
        return Config(**(self.to_dict() | changes))

    @classmethod
    def theory(cls, method: str = "topk", **overrides) -> "Config":
        """The theory practice: the forward pass of the theorems (z = W_E x (+ b_E), x_hat = W_D a (+ b_D)),
        unit-norm decoder columns (our choice) and no biases by default (as the paper's Section 2)."""
        return cls(**({"method": method, "practice": "theory"} | overrides))

    @classmethod
    def standard(cls, method: str = "topk", **overrides) -> "Config":
        """SAELens 6.54.12's defaults for ``method``, as read from its source: forward pass of the standard
        practice, biases, decoder columns of norm 0.1 at initialisation with W_E = W_D^T, no decoder
        renormalisation, Adam lr 3e-4 and betas (0.9, 0.999), gradient-norm clipping 1.0. TopK family (topk,
        batchtopk, matryoshka): AuxK with coefficient 1 and a 1000-step dead window. relu_dec (its "standard"
        SAE): L1 weighted by decoder norms, coefficient 1. jumprelu: L0 coefficient 1, initial threshold 0.01,
        bandwidth 0.05 (theta trained itself and projected to >= 0 after each step, as SAELens does)."""
        if method not in STANDARD_METHODS:
            raise ValueError(f"no standard practice for method={method!r}; allowed: {', '.join(STANDARD_METHODS)}")
        return cls(**({"method": method, "practice": "standard"} | overrides))

    def check_models(self, K: int) -> None:
        """Refuse per-model values (a tuple) whose length is not the number of models K."""
        for name in PER_MODEL:
            v = getattr(self, name)
            if isinstance(v, tuple) and len(v) != K:
                raise ValueError(f"{name} has {len(v)} values but {K} models are trained (one seed each); give "
                                 f"one float or {K} values")

    def check_sizes(self, n_p: int, n_q: int, n_r: int) -> None:
        """Refuse what cannot run with these sizes (k or prefixes beyond n_q, a tied model with n_r != n_p)."""
        if self.impl.uses_k and self.k > n_q:
            raise ValueError(f"k={self.k} exceeds the number of latents n_q={n_q}")
        if self.activation and any(getattr(m, "k", 0) > n_q for m in methods._sigma(self.activation).modules()):
            raise ValueError(f"activation {self.activation!r} keeps more latents than n_q={n_q}")
        if self.prefixes and self.prefixes[-1] > n_q:
            raise ValueError(f"matryoshka prefixes {self.prefixes} exceed n_q={n_q}")
        if self.tied and n_r != n_p:
            raise ValueError(f"tied=True needs n_r = n_p (a tied SAE); got n_r={n_r}, n_p={n_p}")
        if self.practice == "standard" and self.subtract_b_D and n_r != n_p:
            raise ValueError(f"practice='standard' subtracts b_D from the input, so it needs n_r = n_p (an SAE); "
                             f"got n_p={n_p}, n_r={n_r}: set subtract_b_D=False for a transcoder")

    def to_dict(self) -> dict:
        """Every field, flat and JSON-able (tuples as lists): the form files store."""
        return {name: (list(v) if isinstance(v := getattr(self, name), tuple) else v) for name in FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        if unknown := sorted(set(d) - set(FIELDS)):
            raise ValueError(f"unknown Config fields {unknown}; allowed: {', '.join(sorted(FIELDS))}")
        method = methods.METHODS.get(d.get("method", ModelConfig.method))
        if method is not None and not method.uses_k and "k" in d:
            d = {key: v for key, v in d.items() if key != "k"}    # files written before k was checked
        return cls(**({"practice": "theory"} | d))   # files store every field; older ones were all theory
