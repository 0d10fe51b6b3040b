"""The registry of training methods: one object per method, the only place that knows what a method does.

A *method* (``Config.method``) is a training objective: its activation sigma, its sparsity penalty, its extra
parameters (JumpReLU's thresholds), how a latent comes to fire (for resampling), whether it ranks pre-activations
(TopK family: SAELens rescales those by decoder norms), whether a batch is coupled (BatchTopK), whether it has a
sparse training path, and its SAELens name. Everything else in the package asks the method object, never its name.

Adding a method (say a gated SAE) is one subclass of :class:`Method` here, one line in :data:`METHODS`, and its
tests in ``tests/model/test_methods.py`` (see CONTRIBUTING.md). Shapes: K models, B samples, n_q latents;
pre-activations z and codes a are (K, B, n_q).
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..theory.activations import batchtopk_mask, make_activation, topk_mask
from .kernels import JumpReLUSTE, StepSTE
from .sparse import sparse_topk


def per_model(value, like: Tensor) -> Tensor | float:
    """A per-model hyperparameter as a (K,) tensor on ``like``'s device, at least float32 (a float stays a
    float)."""
    if not isinstance(value, tuple):
        return value
    return torch.tensor(value, dtype=torch.promote_types(like.dtype, torch.float32), device=like.device)


def aux_size(cfg: Config, n_p: int) -> int:
    """AuxK's number of dead latents per sample (0 in the config: n_p // 2)."""
    return cfg.aux_k or n_p // 2


def dead_share(cfg: Config, dead: Tensor, n_p: int, dtype) -> Tensor:
    """SAELens's weight on AuxK under the standard practice, per model (K,): min(n_dead / k_aux, 1)."""
    return (dead.sum(1).to(dtype) / aux_size(cfg, n_p)).clamp(max=1.0)


class Method:
    """A training objective. Subclasses override what differs; the defaults are a ReLU-like method without
    penalty, extra parameters or SAELens equivalent."""

    name = ""
    uses_k = False          # Config.k is its number of active latents
    ranks = False           # selects latents by ranking pre-activations (SAELens rescales them by decoder norms)
    batch_coupled = False   # a sample's code depends on the rest of its batch
    nested = False          # trains nested prefixes of the latents (Config.prefixes)
    multi_k = False         # trains TopK reconstructions at several k (Config.k_levels)
    overridable = False     # Config.activation may replace its sigma (theory experiments)
    saelens: str | None = None   # SAELens architecture it exports to (None: no inference equivalent)
    standard: dict | None = None  # SAELens's defaults for it (None: no standard practice)

    def sigma_spec(self, cfg: Config) -> str:
        """sigma as a spec of :mod:`sdl_paper.theory.activations` (the override ``cfg.activation`` first)."""
        return cfg.activation or self._spec(cfg)

    def _spec(self, cfg: Config) -> str:
        return "relu"

    def activate(self, z: Tensor, params: dict[str, Tensor], cfg: Config) -> Tensor:
        """Codes a = sigma(z), (K, B, n_q)."""
        return torch.relu(z)

    def penalty(self, z: Tensor, a: Tensor, params: dict[str, Tensor], cfg: Config) -> Tensor | None:
        """Sparsity penalty per model (K,), or None."""
        return None

    def reconstruction(self, x_r: Tensor, x_hat: Tensor, a: Tensor, params: dict[str, Tensor], cfg: Config,
                       decode) -> Tensor:
        """Reconstruction error per model (K,): mean over the batch of ||x_r - x_hat||^2."""
        return (x_r - x_hat).pow(2).sum(-1).mean(1)

    def init_params(self, K: int, n_q: int, cfg: Config) -> dict[str, Tensor]:
        """Parameters beyond W_E, W_D and the biases, (K, ...)."""
        return {}

    def param_names(self) -> set[str]:
        """Names of :meth:`init_params` in the plain (theory) form that files store."""
        return set()

    def firing_threshold(self, z: Tensor, own: Tensor, params: dict[str, Tensor], cfg: Config) -> Tensor:
        """The pre-activation latent ``own[m]`` must exceed to fire on input m, (m,), for z (m, n_q) of one
        model (``params`` with a model axis of 1)."""
        return torch.zeros(len(own), dtype=z.dtype, device=z.device)

    def sparse_path(self, cfg: Config, n_q: int) -> bool:
        """Whether it trains by the sparse kernels of :mod:`sdl_paper.model.sparse` (then :meth:`sparse_terms`)."""
        return False

    def sparse_terms(self, params, x_p, x_r, cfg: Config, dead, ws) -> dict[str, Tensor]:
        """The loss terms rec, aux, fired and L0 by the sparse kernels (methods whose :meth:`sparse_path` can be
        true)."""
        raise NotImplementedError(f"method {self.name!r} has no sparse path")

    def sdl_sigma(self, params: dict[str, Tensor], cfg: Config, k: int) -> tuple[str, torch.nn.Module]:
        """(label, module) of model k's sigma for the theory's SDL module."""
        spec = self.sigma_spec(cfg)
        return spec, make_activation(spec)

    def from_sdl_sigma(self, model, cfg: Config) -> dict[str, Tensor]:
        """The parameters an SDL module's sigma implies (K = 1); refuses a sigma that is not the method's."""
        if model.activation_spec != self.sigma_spec(cfg):
            raise ValueError(f"the SDL's activation {model.activation_spec!r} is not the method's "
                             f"{self.sigma_spec(cfg)!r}")
        return {}

    def saelens_extra(self, cfg: Config, params: dict[str, Tensor]) -> tuple[dict, dict[str, Tensor]]:
        """Extra SAELens cfg.json fields and tensors of one model (``params`` with a model axis of 1)."""
        return {}, {}

    def __repr__(self) -> str:
        return f"<method {self.name}>"


class ReLU(Method):
    """ReLU + L1 on the codes (the theorems' SAE); ``Config.activation`` may replace sigma (theory experiments)."""

    name, saelens, overridable = "relu", "standard", True

    def activate(self, z, params, cfg):
        if cfg.activation:                # per model: a batch-coupled sigma must not mix the K models
            sigma = _sigma(cfg.activation)
            return torch.stack([sigma(z[k]) for k in range(z.shape[0])])
        return torch.relu(z)

    def penalty(self, z, a, params, cfg):
        return per_model(cfg.l1, a) * a.abs().sum(-1).mean(1)


class ReLUDec(Method):
    """ReLU + L1 weighted by decoder-column norms (SAELens's "standard" SAE)."""

    name, saelens, standard = "relu_dec", "standard", {"l1": 1.0}

    def penalty(self, z, a, params, cfg):
        return per_model(cfg.l1, a) * (a * params["W_D"].norm(dim=1)[:, None]).sum(-1).mean(1)


def thresholds(params: dict[str, Tensor]) -> Tensor:
    """JumpReLU thresholds theta (K, n_q): trained as log theta (theory practice) or as theta (standard)."""
    return params["theta"] if "theta" in params else params["log_theta"].exp()


class JumpReLU(Method):
    """z H(z - theta) with a trained per-latent theta (straight-through estimator, L0 penalty; Rajamanoharan et
    al. 2024b). Theory practice trains log theta; standard practice trains theta, kept >= 0 (as SAELens)."""

    name, saelens = "jumprelu", "jumprelu"
    standard = {"l0": 1.0, "theta_init": 0.01, "bandwidth": 0.05}

    def _spec(self, cfg):
        return f"jumprelu:{cfg.theta_init}"

    def activate(self, z, params, cfg):
        return JumpReLUSTE.apply(z, thresholds(params)[:, None], cfg.bandwidth)

    def penalty(self, z, a, params, cfg):
        step = StepSTE.apply(z, thresholds(params)[:, None], cfg.bandwidth)
        return per_model(cfg.l0, a) * step.sum(-1).mean(1)

    def init_params(self, K, n_q, cfg):
        if cfg.practice == "standard":                  # SAELens trains theta itself, kept >= 0
            return {"theta": torch.full((K, n_q), float(cfg.theta_init))}
        return {"log_theta": torch.full((K, n_q), float(torch.log(torch.tensor(cfg.theta_init))))}

    def param_names(self):
        return {"log_theta"}

    def firing_threshold(self, z, own, params, cfg):
        return thresholds(params)[0, own]

    def sdl_sigma(self, params, cfg, k):
        from ..theory.activations import JumpReLU as Sigma
        return "jumprelu (per latent)", Sigma(thresholds(params)[k].detach().cpu())

    def from_sdl_sigma(self, model, cfg):
        theta = torch.as_tensor(model.sigma.theta).expand(model.n_q).clamp_min(1e-12)
        return {"log_theta": theta.log()[None].clone()}

    def saelens_extra(self, cfg, params):
        return {}, {"threshold": thresholds(params)[0].float()}


class TopK(Method):
    """The k largest positive pre-activations of each sample (Gao et al. 2024)."""

    name, saelens, uses_k, ranks = "topk", "topk", True, True
    standard = {"remedy": "auxk", "aux_coef": 1.0}

    def _spec(self, cfg):
        return f"topk:{cfg.k}"

    def activate(self, z, params, cfg):
        return z * topk_mask(z, cfg.k)

    def firing_threshold(self, z, own, params, cfg):
        """The k-th largest pre-activation of the OTHER latents, or 0 when that is negative."""
        others = z.clone()
        others[torch.arange(len(own), device=z.device), own] = float("-inf")
        return others.topk(min(cfg.k, z.shape[1] - 1), dim=1).values[:, -1].clamp_min(0)

    def sparse_path(self, cfg, n_q):
        if cfg.remedy == "auxk_input":               # its separate decoder W_aux has no sparse kernel
            return False
        return cfg.sparse if cfg.sparse is not None else n_q >= 512

    def saelens_extra(self, cfg, params):
        return {"k": cfg.k, "rescale_acts_by_decoder_norm": False}, {}

    def sparse_terms(self, params, x_p, x_r, cfg, dead, ws) -> dict[str, Tensor]:
        """rec, aux, fired and L0 of the sparse TopK path (:func:`~sdl_paper.model.sparse.sparse_topk`); ``dead``
        (K, n_q): AuxK's latents, or None."""
        K, n_q = x_p.shape[0], params["W_E"].shape[1]
        aux_w = None
        if dead is not None:
            aux_w = torch.full((K,), cfg.aux_coef, device=x_p.device)
            if cfg.practice == "standard":
                aux_w = aux_w * dead_share(cfg, dead, x_p.shape[-1], torch.float32)
        out = sparse_topk(params, x_p, x_r, cfg.k, cfg.practice == "standard" and cfg.subtract_b_D, cfg.rescaled,
                          dead, min(aux_size(cfg, x_p.shape[-1]), n_q), aux_w, ws)
        on = out["vals"] > 0                                                  # (K, B, k): the chosen that fired
        # latent n_q is a sink for the chosen that did not fire (all writes are True: deterministic)
        fired = torch.zeros(K, n_q + 1, dtype=torch.bool, device=x_p.device).scatter_(
            1, torch.where(on, out["idx"], n_q).reshape(K, -1), True)[:, :n_q]
        return {"rec": out["rec"], "aux": out["aux"], "fired": fired,
                "L0": on.sum(-1, dtype=torch.float32).mean(1)}


class BatchTopK(TopK):
    """The k * B largest positive pre-activations of each model's batch (Bussmann et al. 2024); resampling
    judges a latent per sample, as TopK does."""

    name, saelens, batch_coupled = "batchtopk", None, True

    def _spec(self, cfg):
        return f"batchtopk:{cfg.k}"

    def activate(self, z, params, cfg):
        return z * batchtopk_mask(z, cfg.k)

    def sparse_path(self, cfg, n_q):
        return False

    def saelens_extra(self, cfg, params):
        return {}, {}


class Matryoshka(BatchTopK):
    """Nested prefixes over BatchTopK (Bussmann et al. 2025): every prefix of the latents reconstructs."""

    name, nested = "matryoshka", True

    def reconstruction(self, x_r, x_hat, a, params, cfg, decode):
        n_q = a.shape[-1]
        sizes = cfg.prefixes or (n_q // 8, n_q // 4, n_q // 2, n_q)
        if cfg.practice == "standard" and sizes[-1] != n_q:
            sizes = (*sizes, n_q)                    # SAELens appends d_sae to the widths
        recs = [(x_r - decode({**params, "W_D": params["W_D"][..., :m]}, a[..., :m], cfg)).pow(2).sum(-1).mean(1)
                for m in sizes]
        # theory: the mean over prefixes; SAELens: the full reconstruction plus each inner prefix's (a sum)
        return torch.stack(recs).sum(0) if cfg.practice == "standard" else torch.stack(recs).mean(0)


class MatryoshkaK(TopK):
    """The paper's Matryoshka loss (its eq. 9): sum_i lambda_i ||x_r - W_D sigma_TopK_{k_i}(W_E x_p)||^2, several
    k over the whole dictionary (not Bussmann et al.'s nested prefixes, :class:`Matryoshka`); codes are TopK at
    the largest k. The weights lambda_i are not given in the paper: equal, their mean (ours)."""

    name, multi_k = "matryoshka_k", True

    def sparse_path(self, cfg, n_q):
        return False

    def reconstruction(self, x_r, x_hat, a, params, cfg, decode):
        """Mean over k_i of ||x_r - W_D sigma_TopK_{k_i}||^2: the k_i largest of the codes a (TopK at the largest
        k, so the k_i largest pre-activations), the largest k's error being ``x_hat``'s."""
        recs = [(x_r - (x_hat if k == cfg.k else decode(params, a * topk_mask(a, k), cfg))).pow(2).sum(-1).mean(1)
                for k in k_levels(cfg)]
        return torch.stack(recs).mean(0)


def k_levels(cfg) -> tuple[int, ...]:
    """matryoshka_k's values of k: ``cfg.k_levels``, or k/4, k/2, k rounded up without repeats."""
    return cfg.k_levels or tuple(sorted({max(1, -(-cfg.k // d)) for d in (4, 2, 1)}))


METHODS: dict[str, Method] = {m.name: m for m in (ReLU(), ReLUDec(), JumpReLU(), TopK(), BatchTopK(), Matryoshka(),
                                                   MatryoshkaK())}


def get(name: str) -> Method:
    """The method called ``name``; the error lists the valid names."""
    if name not in METHODS:
        raise ValueError(f"method={name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


@functools.lru_cache(maxsize=64)
def _sigma(spec: str) -> torch.nn.Module:
    """The activation of ``spec``, built once."""
    return make_activation(spec)
