"""The sparse TopK path: after the encoder's dense product, a TopK SAE step reads and updates only the k active
latents per sample (and AuxK's k_aux dead ones). Same numbers as the dense path up to float rounding (tested).

:class:`SparseTopK` is the whole reconstruction (and AuxK) loss of a batch as one autograd node whose backward is
written out by hand: four sparse products per model where autograd's dense path runs three dense (B, n_q) matmuls,
and a few dozen tensor operations per step where a graph of the same loss takes over a hundred (at the small bench
shape a step's cost is mostly per-operation overhead). With a :class:`Workspace` (the trainer passes one) the
(K, B, n_q) pre-activations and the W_E / W_D gradients live in buffers kept from step to step: on the CPU a fresh
large tensor costs page faults, and the bench shape would allocate five per step. Every kernel choice here is timed
against the alternative it replaces in ``benchmarks/KERNELS.md`` (``make bench``); the numbers live there.

Shapes: W_E (K, n_q, n_p), W_D (K, n_r, n_q), b_E (K, n_q), b_D (K, n_r), x_p (K, B, n_p), x_r (K, B, n_r);
indices idx (K, B, k) of the chosen latents (in TopK's order; no product here needs them sorted).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.nn.functional import embedding_bag


def _stack(ts: list[Tensor]) -> Tensor:
    """torch.stack without the copy when there is one model."""
    return ts[0][None] if len(ts) == 1 else torch.stack(ts)


def _sparse_csr(crow: Tensor, col: Tensor, vals: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, vals, shape, check_invariants=False)


def _csr(vals: Tensor, idx: Tensor, n_q: int) -> Tensor:
    """The (B, n_q) sparse CSR code matrix A holding vals (B, k) at columns idx (B, k) (unique within rows; the
    sampled matmul, its one use, does not need them sorted)."""
    B, k = idx.shape
    return _sparse_csr(torch.arange(0, B * k + 1, k, device=idx.device), idx.reshape(-1), vals.reshape(-1),
                       (B, n_q))


def latent_order(idx: Tensor, n_q: int) -> tuple[Tensor, Tensor, Tensor]:
    """The entries of idx (B, k) sorted by latent: (order (B k,), crow (n_q + 1,), their samples (B k,)), the CSR
    structure of A^T for any code matrix A with entries at idx."""
    B, k = idx.shape
    flat = idx.reshape(-1)
    if flat.numel() <= 16384:     # the stable order, as an unstable sort of unique keys (faster when short)
        order = (flat * flat.numel() + torch.arange(flat.numel(), device=flat.device)).argsort()
    else:
        order = flat.argsort(stable=True)
    crow = torch.zeros(n_q + 1, dtype=torch.long, device=idx.device)
    crow[1:] = torch.bincount(flat, minlength=n_q).cumsum(0)
    return order, crow, order.div(k, rounding_mode="floor")


# up to this many entries in the B k outer-product rows (4 MB in fp32), A^T X goes by index_add_ (no latent sort):
# faster than the CSR product and its share of the sort up to about this size, slower above it
# (benchmarks/KERNELS.md)
ROWS_BY_INDEX_ADD = 2 ** 20


def plan_for(idx: Tensor, n: int, n_q: int) -> tuple[Tensor, ...]:
    """What :func:`rows_product` needs for products of idx (B, k) with (B, n) matrices: ``()`` (index_add_) on
    the CPU while B k n <= ROWS_BY_INDEX_ADD, else :func:`latent_order` of idx (CSR; CUDA always)."""
    if not idx.is_cuda and idx.numel() * n <= ROWS_BY_INDEX_ADD:
        return ()
    return latent_order(idx, n_q)


def rows_product(vals: Tensor, idx: Tensor, X: Tensor, n_q: int, out: Tensor | None = None,
                 plan: tuple[Tensor, ...] | None = None) -> Tensor:
    """A^T X (n_q, n) for the code matrix A of vals, idx (B, k) and X (B, n): the gradient rows of the latents
    that fired, added into ``out`` when given. ``plan``: :func:`plan_for` idx (computed once for several
    products; None: chosen here): with ``()``, the B k rows vals[b, j] X[b] are added at rows idx[b, j]
    (index_add_, deterministic on the CPU); with :func:`latent_order`, A^T is built in CSR form and multiplied."""
    plan = plan_for(idx, X.shape[1], n_q) if plan is None else plan
    if out is None:
        out = torch.zeros(n_q, X.shape[1], dtype=X.dtype, device=X.device)
    if not plan:
        return out.index_add_(0, idx.reshape(-1), (vals[..., None] * X[:, None]).reshape(-1, X.shape[1]))
    order, crow, col = plan
    At = _sparse_csr(crow, col, vals.reshape(-1).index_select(0, order), (n_q, idx.shape[0]))
    return out.addmm_(At, X)


def sampled_dots(X: Tensor, W: Tensor, idx: Tensor) -> Tensor:
    """<X[b], W[:, idx[b, j]]> (B, k) for X (B, n) and W (n, n_q): a sampled matmul."""
    A = _csr(torch.ones(idx.shape, dtype=X.dtype, device=X.device), idx, W.shape[1])
    return torch.sparse.sampled_addmm(A, X, W, beta=0.0).values().reshape(idx.shape)


def bag(idx: Tensor, rows: Tensor, vals: Tensor) -> Tensor:
    """sum_j vals[b, j] rows[idx[b, j]] (B, n) for rows (n_q, n): an embedding bag."""
    return embedding_bag(idx, rows, per_sample_weights=vals, mode="sum")


def gather_latents(per_latent: Tensor, idx: Tensor) -> Tensor:
    """per_latent (K, n_q) read at idx (K, B, j): (K, B, j)."""
    K, B, j = idx.shape
    return per_latent.gather(1, idx.reshape(K, B * j)).reshape(K, B, j)


def _into(ws: "Workspace | None", name: str, shape: tuple[int, ...], like: Tensor) -> dict:
    """``out=`` keyword of the workspace's buffer ``name`` (none without a workspace: a fresh tensor)."""
    return {"out": ws.buffer(name, shape, like)} if ws is not None else {}


def _chosen(z: Tensor, k: int, ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`top_k` of z (K, B, n), its indices sorted on CUDA (cuSPARSE's sampled matmul expects sorted
    columns; the CPU kernel does not) with the values in the same order; with ``ids`` (K, n), ascending, the
    latents z's columns hold, the indices are theirs."""
    val, idx = top_k(z, k)
    if idx.is_cuda:
        idx, perm = idx.sort(dim=-1)
        val = val.gather(2, perm)
    return val, (idx if ids is None else gather_latents(ids, idx))


def dead_top_k(z: Tensor, dead: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest z (K, B, n_q) among each model's latents ``dead`` (K, n_q) bool: (values, indices)
    (K, B, min(k, d)) for d the most dead latents of any model, values -inf where a model has fewer than that
    (AuxK keeps only positive values). The dead columns are gathered first, so the top-k reads d entries per
    row instead of n_q, faster than the top-k of z with the live latents at -inf (SAELens's AuxK) while a minority
    is dead (benchmarks/KERNELS.md); the same values."""
    K, B, n_q = z.shape
    n_dead = dead.sum(1)
    d = int(n_dead.max())
    ids = (~dead).to(torch.uint8).argsort(dim=1, stable=True)[:, :d]          # (K, d): dead latents first
    cols = z.gather(2, ids[:, None].expand(K, B, d))    # (faster than index_select, any K: KERNELS.md)
    if K > 1:                                             # a model with fewer dead latents: the rest at -inf
        cols.masked_fill_((torch.arange(d, device=z.device) >= n_dead[:, None])[:, None], float("-inf"))
    return _chosen(cols, min(k, d), ids)


def _encode(x_in: Tensor, W: Tensor, b: Tensor | None, amp: torch.dtype | None, ws: "Workspace | None") -> Tensor:
    """x_in W^T + b (K, B, n_q): in the autocast dtype ``amp`` when given, else in fp32 into a workspace buffer."""
    if amp is not None:
        z = torch.bmm(x_in.to(amp), W.to(amp).transpose(1, 2)).float()
        return z if b is None else z.add_(b[:, None])
    out = _into(ws, "z", (*x_in.shape[:2], W.shape[1]), x_in)
    if b is None:
        return torch.bmm(x_in, W.transpose(1, 2), **out)
    return torch.baddbmm(b[:, None], x_in, W.transpose(1, 2), **out)


def top_k(z: Tensor, k: int, chunk: int = 4) -> tuple[Tensor, Tensor]:
    """(values, indices) (K, B, k) of the k largest entries of each row of z (K, B, n), in descending order.

    On the CPU (for k <= 4, k >= 32 or n >= 4096) in two rounds: the k chunks with the largest maxima (chunk j
    holds entries j, j + n/c, j + 2n/c, ..., c = ``chunk`` of them) hold the k largest entries, so the top k of
    those k c candidates is the answer: the same values as torch.topk, the same positions up to ties. torch's CPU
    top-k selects within each whole row; the two rounds are faster for the shapes dispatched here and not for
    8 <= k <= 16 at small n, where the second round's short rows cost torch as much per row as the whole row
    (times in benchmarks/KERNELS.md).
    """
    n = z.shape[-1]
    if z.is_cuda or (4 < k < 32 and n < 4096) or n % chunk or k * chunk * 2 > n:
        return z.topk(k, dim=-1)
    g = n // chunk
    maxima = z.reshape(*z.shape[:-1], chunk, g).amax(-2)                     # (K, B, g)
    chunks = maxima.topk(k, dim=-1, sorted=False).indices
    cand = (chunks[..., None] + torch.arange(0, n, g, device=z.device)).reshape(*z.shape[:-1], k * chunk)
    val, j = z.gather(-1, cand).topk(k, dim=-1)
    return val, cand.gather(-1, j)


class Workspace:
    """What a training loop keeps from step to step instead of allocating it afresh.

    ``grads``: one gradient buffer per parameter, which :class:`SparseTopK` adds its gradients into (returning
    none to autograd). :meth:`attach` zeroes them and makes them the parameters' ``.grad`` before the forward
    pass, so that autograd adds the other terms' gradients (anchoring) into the same tensors. ``buffer``:
    scratch tensors, valid until the next step.
    """

    def __init__(self, params: dict[str, Tensor]):
        self.grads = {n: torch.zeros_like(p) for n, p in params.items()}
        self._scratch: dict[str, Tensor] = {}

    def attach(self, params: dict[str, Tensor]) -> None:
        for name, g in self.grads.items():
            params[name].grad = g.zero_()

    def sink(self, name: str) -> Tensor | None:
        """The gradient buffer of a parameter (a tied model's W_D is W_E^T: the transposed view of W_E's)."""
        if name == "W_D" and "W_D" not in self.grads:
            return self.grads["W_E"].transpose(1, 2) if "W_E" in self.grads else None
        return self.grads.get(name)

    def buffer(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        t = self._scratch.get(name)
        if t is None or tuple(t.shape) != tuple(shape) or t.dtype != like.dtype or t.device != like.device:
            t = self._scratch[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return t


class SparseTopK(torch.autograd.Function):
    """rec, aux (K,), vals, idx (K, B, k) of a TopK SAE (or transcoder) on one batch, the backward by hand.

    Forward: z_pre = x_in W_E^T + b_E with x_in = x_p - b_D (``subtract_b_D``) or x_p; the ranking
    z = z_pre * ||W_D columns|| (``rescale``, SAELens's rescale_acts_by_decoder_norm) or z_pre; idx = the k largest
    z (computed as x_in (norms W_E)^T + norms b_E, one product); vals = ReLU(z at idx); the decoder reads
    vals / norm = ReLU(z_pre at idx) (the rescaling cancels, so no gradient flows through the norms; a zero column
    decodes nothing); x_hat = codes W_D^T + b_D;
    rec = mean_b ||x_hat - x_r||^2. AuxK (``dead`` (K, n_q) given): the k_aux largest positive z among dead
    latents decode e_hat = z_pre codes W_D^T (no bias) and aux = aux_w * mean_b ||e_hat - (x_r - x_hat)||^2 with
    x_hat held fixed (Gao et al. 2024); aux_w (K,) is the coefficient times any per-model weight. ``amp``: the
    dtype of the encoder product under autocast (the rest runs in fp32).
    """

    @staticmethod
    def forward(ctx, W_E, W_D, b_E, b_D, x_p, x_r, dead, aux_w, k: int, k_aux: int, subtract_b_D: bool,
                rescale: bool, amp: torch.dtype | None, ws: Workspace | None):
        K, B = x_p.shape[:2]
        x_in = x_p - b_D[:, None] if subtract_b_D else x_p
        # the ranking z = z_pre * norms as one product: rows of W_E and b_E scaled by the norms (n_q n_p numbers)
        # instead of a pass over the (B, n_q) pre-activations; b_E added by the product (baddbmm)
        norms = W_D.norm(dim=1) if rescale else None                          # (K, n_q)
        # (into a kept buffer: a fresh (n_q, n_p) tensor per step costs page faults at the bench shape)
        W_z = torch.mul(W_E, norms[..., None], **_into(ws, "W_z", W_E.shape, W_E)) if rescale else W_E
        b_z = None if b_E is None else b_E * norms if rescale else b_E
        z = _encode(x_in, W_z, b_z, amp, ws)
        val, idx = _chosen(z, k)
        vals = torch.relu(val)
        if rescale:               # the decoder reads ReLU(z_pre) = vals / norm; a zero column decodes nothing
            s = gather_latents(norms, idx)
            codes = vals / s.clamp_min(1e-12)
            gate = (vals > 0) & (s > 0)                                       # d codes / d z_pre
        else:
            codes, gate = vals, val > 0
        x_hat = _stack([bag(idx[m], W_D[m].T, codes[m]) for m in range(K)])
        if b_D is not None:
            x_hat += b_D[:, None]
        r = x_hat - x_r
        rec = r.pow(2).sum(-1).mean(1)
        aux, saved_aux = torch.zeros_like(rec), ()
        if dead is not None:
            val_a, idx_a = dead_top_k(z, dead, k_aux)
            keep = val_a > 0                                 # dead (the others rank at -inf) and positive
            pre_a = val_a / gather_latents(norms, idx_a).clamp_min(1e-12) if rescale else val_a
            codes_a = torch.where(keep, pre_a, 0.0)
            d = _stack([bag(idx_a[m], W_D[m].T, codes_a[m]) for m in range(K)]) + r    # e_hat - (x_r - x_hat)
            aux = aux_w * d.pow(2).sum(-1).mean(1)
            saved_aux = (idx_a, codes_a, keep, d)
        ctx.save_for_backward(W_E, W_D, x_in, idx, codes, gate, r, *saved_aux)
        ctx.aux, ctx.aux_w, ctx.flags, ctx.ws = dead is not None, aux_w, (b_E is not None, b_D is not None,
                                                                           subtract_b_D), ws
        ctx.mark_non_differentiable(vals, idx)
        return rec, aux, vals, idx

    @staticmethod
    def backward(ctx, g_rec, g_aux, _g_vals, _g_idx):
        W_E, W_D, x_in, idx, codes, gate, r, *saved_aux = ctx.saved_tensors
        has_b_E, has_b_D, subtract_b_D = ctx.flags
        K, B = r.shape[:2]
        n_q = W_E.shape[1]
        ws = ctx.ws
        sink_E, sink_D = (ws.sink("W_E"), ws.sink("W_D")) if ws is not None else (None, None)
        g_WE = sink_E if sink_E is not None else torch.zeros_like(W_E)
        g_WD = (sink_D if sink_D is not None else torch.zeros_like(W_D)).transpose(1, 2)    # (K, n_q, n_r)
        # per term: (d loss / d its decoded output, its codes, their latents, d codes / d pre-activations)
        terms = [((2 / B) * g_rec[:, None, None] * r, codes, idx, gate)]
        if ctx.aux:
            idx_a, codes_a, keep, d = saved_aux
            terms.append(((2 / B) * (g_aux * ctx.aux_w)[:, None, None] * d, codes_a, idx_a, keep))
        g_b_E = torch.zeros(K, n_q, dtype=r.dtype, device=r.device) if has_b_E else None
        need_x = subtract_b_D and has_b_D or ctx.needs_input_grad[4]
        g_x = torch.zeros_like(x_in) if need_x else None
        for e, c, i, dcdu in terms:
            for m in range(K):
                plan = plan_for(i[m], max(x_in.shape[-1], r.shape[-1]), n_q)
                rows_product(c[m], i[m], e[m], n_q, g_WD[m], plan)
                g_u = sampled_dots(e[m], W_D[m], i[m]) * dcdu[m]
                rows_product(g_u, i[m], x_in[m], n_q, g_WE[m], plan)
                if g_b_E is not None:
                    g_b_E[m].scatter_add_(0, i[m].reshape(-1), g_u.reshape(-1))
                if g_x is not None:
                    g_x[m] += bag(i[m], W_E[m], g_u)
        e_rec = terms[0][0]
        g_b_D = e_rec.sum(1) if has_b_D else None
        if g_b_D is not None and subtract_b_D:
            g_b_D -= g_x.sum(1)
        g_x_r = -e_rec if ctx.needs_input_grad[5] else None
        return (None if sink_E is not None else g_WE, None if sink_D is not None else g_WD.transpose(1, 2),
                g_b_E, g_b_D, g_x if ctx.needs_input_grad[4] else None, g_x_r, *[None] * 8)


def sparse_topk(params: dict[str, Tensor], x_p: Tensor, x_r: Tensor, k: int, subtract_b_D: bool = False,
                rescale: bool = False, dead: Tensor | None = None, k_aux: int = 0, aux_w: Tensor | None = None,
                ws: Workspace | None = None) -> dict[str, Tensor]:
    """:class:`SparseTopK` on a model form's parameters: ``rec`` and ``aux`` (K,) with autograd to every parameter
    (into ``ws``'s gradient buffers when given), ``vals`` and ``idx`` (K, B, k). ``dead`` (K, n_q) bool turns on
    AuxK with k_aux latents and weight ``aux_w`` (K,)."""
    W_D = params["W_D"] if "W_D" in params else params["W_E"].transpose(1, 2)
    if dead is not None and aux_w is None:
        raise ValueError("AuxK (dead given) needs aux_w, its (K,) weight")
    dev = x_p.device.type
    amp = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
    with torch.autocast(dev, enabled=False):               # only the encoder product runs in the autocast dtype
        rec, aux, vals, idx = SparseTopK.apply(params["W_E"], W_D, params.get("b_E"), params.get("b_D"), x_p, x_r,
                                               dead, aux_w, k, k_aux, subtract_b_D, rescale, amp, ws)
    return {"rec": rec, "aux": aux, "vals": vals, "idx": idx}
