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

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .config import Config


def activation_spec(cfg: Config) -> str:
    """The method's sigma as an activation-registry spec (JumpReLU: the initial threshold; see :func:`to_sdl`)."""
    return cfg.impl.sigma_spec(cfg)


def encode(params: dict[str, Tensor], x_p: Tensor, cfg: Config) -> tuple[Tensor, Tensor]:
    """(pre-activations z, codes a), both (K, B, n_q), for batches x_p (K, B, n_p)."""
    if cfg.practice == "standard" and cfg.subtract_b_D:
        x_p = x_p - params["b_D"][:, None]          # SAELens: b_dec subtracted from the input
    z = torch.bmm(x_p, params["W_E"].transpose(1, 2))
    if "b_E" in params:
        z = z + params["b_E"][:, None]
    if cfg.rescaled:
        z = z * params["W_D"].norm(dim=1)[:, None]    # SAELens: rescale_acts_by_decoder_norm
    return z, cfg.impl.activate(z, params, cfg)


def with_decoder(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``params`` with ``W_D`` present: a tied model's decoder is the view W_E^T (K, n_p, n_q) of its encoder."""
    return params if "W_D" in params else {**params, "W_D": params["W_E"].transpose(1, 2)}


def decode(params: dict[str, Tensor], a: Tensor, cfg: Config | None = None) -> Tensor:
    """Reconstructions (K, B, n_r) of codes a (K, B, n_q) (standard-practice TopK: codes divided by the decoder
    norms first, as SAELens does)."""
    if cfg is not None and cfg.rescaled:
        a = a / params["W_D"].norm(dim=1)[:, None].clamp_min(1e-12)
    out = torch.bmm(a, params["W_D"].transpose(1, 2))
    return out + params["b_D"][:, None] if "b_D" in params else out




def unscale(params: dict[str, Tensor], c_p: float, c_r: float) -> dict[str, Tensor]:
    """Parameters trained on inputs times ``c_p`` and targets times ``c_r`` (activation normalisation) as the same
    model on raw activations: W_E c_p, W_D / c_r, b_D / c_r (b_E unchanged). Pre-activations are unchanged (the
    standard practice's subtracted b_D needs c_p = c_r, as an SAE has), except that SAELens's decoder-norm
    rescaling divides them by c_r, which keeps the TopK selection; reconstructions are the scaled model's / c_r."""
    out = dict(params)
    out["W_E"] = params["W_E"] * c_p
    if "W_D" in params:
        out["W_D"] = params["W_D"] / c_r
    if "b_D" in params:
        out["b_D"] = params["b_D"] / c_r
    return out


def fold_standard(params: dict[str, Tensor], cfg: Config) -> dict[str, Tensor]:
    """Parameters of the plain form (z = W_E x + b_E, x_hat = W_D a + b_D) computing the same codes and
    reconstructions as a standard-practice dictionary."""
    W_E, W_D, b_E, b_D = params["W_E"], params["W_D"], params["b_E"], params["b_D"]
    if cfg.subtract_b_D:
        b_E = b_E - torch.einsum("kqp,kp->kq", W_E, b_D)
    if cfg.rescaled:
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


FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def param_shapes(cfg: Config, K: int, n_p: int, n_q: int, n_r: int) -> dict[str, tuple[int, ...]]:
    """The name and shape of every parameter :func:`init_params` makes for these sizes (W_D absent when tied)."""
    shapes = {"W_E": (K, n_q, n_p)} | ({} if cfg.tied else {"W_D": (K, n_r, n_q)})
    if cfg.bias:
        shapes |= {"b_E": (K, n_q), "b_D": (K, n_r)}
    if cfg.remedy == "auxk_input":
        shapes["W_aux"] = (K, n_p, n_q)
    return shapes | {name: (K, n_q) for name in cfg.impl.param_names()}


def check_params(params: dict[str, Tensor], cfg: Config, where: str, aux: bool = True) -> tuple[int, int, int, int]:
    """Refuse parameters that ``cfg`` does not describe: a missing or extra name, a shape other than
    :func:`param_shapes`, a dtype that is not floating point, or a value that is not finite. Returns
    (K, n_p, n_q, n_r); ``where`` names the file in the messages; ``aux=False``: a dictionary (no W_aux)."""
    W_E, W_D = params.get("W_E"), params.get("W_D", params.get("W_E"))
    if W_E is None or W_E.ndim != 3 or W_D is None or W_D.ndim != 3:
        raise ValueError(f"{where}: W_E (K, n_q, n_p) and W_D (K, n_r, n_q) must be 3-D tensors; got "
                         f"{None if W_E is None else tuple(W_E.shape)}, {None if W_D is None else tuple(W_D.shape)}")
    K, n_q, n_p = W_E.shape
    n_r = n_p if cfg.tied else W_D.shape[1]
    expected = param_shapes(cfg, K, n_p, n_q, n_r)
    if not aux:
        expected.pop("W_aux", None)
    if set(params) != set(expected):
        raise ValueError(f"{where}: tensors {sorted(params)} do not match the configuration, which needs "
                         f"{sorted(expected)}")
    for name, shape in expected.items():
        t = params[name]
        if tuple(t.shape) != shape:
            raise ValueError(f"{where}: {name} has shape {tuple(t.shape)}; its configuration and W_E, W_D imply "
                             f"{shape}")
        if t.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{where}: {name} has dtype {t.dtype}; allowed: float32, float64, float16, bfloat16")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{where}: {name} holds non-finite values (NaN or inf)")
    return K, n_p, n_q, n_r


def init_params(K: int, n_p: int, n_q: int, n_r: int, cfg: Config, seeds: list[int]) -> dict[str, Tensor]:
    """Parameters of K models, model k initialised from seeds[k] exactly as a K = 1 run with that seed would be:
    decoder columns of norm ``init_scale``, W_E = W_D^T when n_r = n_p, zero biases, the method's own."""
    if len(seeds) != K:
        raise ValueError(f"need one seed per model: got {len(seeds)} seeds for K={K}")
    cfg.check_models(K)
    if cfg.tied and n_r != n_p:
        raise ValueError(f"tied=True needs n_r = n_p (a tied SAE); got n_r={n_r}, n_p={n_p}")
    # W_D is stored column-major (each decoder column contiguous), so that gathering columns is fast
    W_E, W_D = torch.empty(K, n_q, n_p), torch.empty(K, n_q, n_r).transpose(1, 2)
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed(s)
        D = torch.randn(n_r, n_q, generator=g)
        scale = cfg.init_scale[i] if isinstance(cfg.init_scale, tuple) else cfg.init_scale
        W_D[i] = scale * D / D.norm(dim=0, keepdim=True)
        W_E[i] = W_D[i].T if n_r == n_p else torch.randn(n_q, n_p, generator=g) * scale / n_p ** 0.5
    params = {"W_E": W_E} if cfg.tied else {"W_E": W_E, "W_D": W_D}
    if cfg.bias:
        params |= {"b_E": torch.zeros(K, n_q), "b_D": torch.zeros(K, n_r)}
    if cfg.remedy == "auxk_input":
        params["W_aux"] = aux_decoder(n_p, n_q, cfg, seeds)
    return params | cfg.impl.init_params(K, n_q, cfg)


def aux_decoder(n_p: int, n_q: int, cfg: Config, seeds: list[int]) -> Tensor:
    """W_aux (K, n_p, n_q): the separate decoder W_D' of the paper's AuxK (eq. 8, remedy ``auxk_input``), columns of
    norm ``init_scale``, drawn from its own generator per seed so that every other parameter is initialised as
    without it."""
    out = torch.empty(len(seeds), n_p, n_q)
    for i, s in enumerate(seeds):
        D = torch.randn(n_p, n_q, generator=torch.Generator().manual_seed(s + 2_000_003))
        scale = cfg.init_scale[i] if isinstance(cfg.init_scale, tuple) else cfg.init_scale
        out[i] = scale * D / D.norm(dim=0, keepdim=True)
    return out


def to_sdl(params: dict[str, Tensor], cfg: Config, k: int = 0):
    """Model ``k`` of ``params`` as an :class:`~sdl_paper.theory.framework.SDL` computing the same codes
    (JumpReLU: its trained per-latent thresholds)."""
    from ..theory.framework import SDL

    P = with_decoder(params)
    label, sigma = cfg.impl.sdl_sigma(params, cfg, k)
    return SDL.from_weights(P["W_E"][k], None if cfg.tied else P["W_D"][k], sigma, label,
                            *((P["b_E"][k], P["b_D"][k]) if "b_E" in P else ()))


def from_sdl(model, cfg: Config) -> dict[str, Tensor]:
    """A K = 1 parameter dict from an SDL module; ``cfg`` must describe its activation (checked)."""
    if bool(model.tied) != cfg.tied:
        raise ValueError(f"the SDL has tied={model.tied} but cfg.tied={cfg.tied}")
    p = {"W_E": model.W_E.detach().clone()[None]}
    if not cfg.tied:
        p["W_D"] = model.W_D.detach().clone()[None]
    if model.b_E is not None:
        p |= {"b_E": model.b_E.detach().clone()[None], "b_D": model.b_D.detach().clone()[None]}
    return p | cfg.impl.from_sdl_sigma(model, cfg)


@dataclass
class Dictionary:
    """Trained dictionaries as users handle them: K models' parameters, their Config and provenance.

    ``Dictionary.from_state(state)`` after training; :func:`sdl_paper.io.files.save_dictionary` and
    ``load_dictionary`` write and read it as safetensors + JSON.
    """

    params: dict[str, Tensor]
    cfg: Config
    seeds: list[int] = field(default_factory=list)
    meta: dict = field(default_factory=dict)   # step, data source, and for imports where they came from

    @classmethod
    def from_state(cls, state: State, cfg: Config | None = None) -> "Dictionary":
        cfg = cfg or Config.from_dict(state.config)
        params = {k: v.detach().cpu().clone() for k, v in state.params.items() if k != "W_aux"}   # training only
        meta = {"step": state.step, "source": state.source}
        scale = state.source.get("scale") if isinstance(state.source, dict) else None
        if scale is not None:
            params = unscale(params, *scale)
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
