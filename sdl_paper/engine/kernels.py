"""The training engine's kernels: JumpReLU's straight-through estimator, TopK and BatchTopK masks, and the sparse TopK
path, which after the encoder's dense forward matmul reads and updates only the k active latents per sample
(sparse CSR products; same numbers as the dense path up to float rounding, tested)."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor


def _kernel(z: Tensor, theta: Tensor, eps: float) -> Tensor:
    """Rectangle kernel K((z - theta) / eps) / eps of the straight-through estimator."""
    return ((z - theta).abs() < eps / 2).to(z.dtype) / eps


class JumpReLUSTE(torch.autograd.Function):
    """z * H(z - theta); d/dtheta by the pseudo-derivative -theta K((z - theta)/eps)/eps. theta is (K, 1, n_q)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        g_theta = -(grad * theta * _kernel(z, theta, ctx.eps)).sum(dim=1, keepdim=True)
        return grad * (z > theta), g_theta, None


class StepSTE(torch.autograd.Function):
    """H(z - theta) for the L0 penalty; d/dtheta by -K((z - theta)/eps)/eps, no gradient to z."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        return None, -(grad * _kernel(z, theta, ctx.eps)).sum(dim=1, keepdim=True), None


def topk_mask(z: Tensor, k: int) -> Tensor:
    """Boolean mask of the k largest positive entries of each row of z (..., n_q)."""
    idx = z.topk(k, dim=-1).indices
    return torch.zeros_like(z, dtype=torch.bool).scatter(-1, idx, True) & (z > 0)


def batchtopk_mask(z: Tensor, k: int) -> Tensor:
    """Boolean mask of the k * B largest positive entries of each model's batch z (K, B, n_q)."""
    K, B, n_q = z.shape
    flat = z.reshape(K, B * n_q)
    idx = flat.topk(k * B, dim=-1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter(-1, idx, True).reshape(K, B, n_q) & (z > 0)


def _stack(ts: list[Tensor]) -> Tensor:
    """torch.stack without the copy when there is one model."""
    return ts[0][None] if len(ts) == 1 else torch.stack(ts)


def _csr(vals: Tensor, idx: Tensor, n_q: int) -> Tensor:
    """The (B, n_q) sparse CSR matrix with vals (B, k) at columns idx (B, k) (each row's indices sorted, unique)."""
    B, k = idx.shape
    crow = torch.arange(0, B * k + 1, k, device=idx.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, idx.reshape(-1), vals.reshape(-1), (B, n_q), check_invariants=False)


class SparseDecode(torch.autograd.Function):
    """x_hat[k] = A_k W_D[k]^T with A_k the sparse (B, n_q) code matrix holding vals[k] at idx[k]: only the k
    active decoder columns per sample are read, and only they receive gradient (a sampled matmul for d vals).
    vals, idx are (K, B, k), idx sorted within rows; W_D is (K, n_r, n_q); returns (K, B, n_r)."""

    @staticmethod
    def forward(ctx, vals, idx, W_D):
        vals = vals.float()
        ctx.save_for_backward(vals, idx, W_D)
        n_q = W_D.shape[2]
        with torch.autocast(W_D.device.type, enabled=False):      # sparse kernels run in fp32
            return _stack([_csr(vals[k], idx[k], n_q) @ W_D[k].T for k in range(W_D.shape[0])])

    @staticmethod
    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def backward(ctx, grad):
        vals, idx, W_D = ctx.saved_tensors
        grad = grad.float()
        n_q = W_D.shape[2]
        g_vals, g_W = [], []
        for k in range(W_D.shape[0]):
            A = _csr(vals[k], idx[k], n_q)
            g_vals.append(torch.sparse.sampled_addmm(A, grad[k], W_D[k], beta=0.0).values().reshape(idx[k].shape))
            g_W.append(A.t() @ grad[k])                                  # (n_q, n_r)
        return _stack(g_vals), None, _stack(g_W).transpose(1, 2)         # W_D's column-major layout


class SparseEncode(torch.autograd.Function):
    """vals[k, b, j] = z[k, b, idx[k, b, j]] with z = x_p W_E^T already computed (no autograd); the backward is the
    sparse product G_k^T x_p[k], which touches only the chosen encoder rows (and, when x_p needs it, the input
    gradient G_k W_E[k]). z: (K, B, n_q); W_E: (K, n_q, n_p); idx: (K, B, k), sorted within rows."""

    @staticmethod
    def forward(ctx, W_E, z, idx, x_p):
        ctx.save_for_backward(idx, x_p.float(), W_E)
        return z.gather(2, idx).float()

    @staticmethod
    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def backward(ctx, g_vals):
        idx, x_p, W_E = ctx.saved_tensors
        g_vals = g_vals.float()
        K, n_q, n_p = W_E.shape
        A = [_csr(g_vals[k], idx[k], n_q) for k in range(K)]
        g_x = _stack([A[k] @ W_E[k] for k in range(K)]) if ctx.needs_input_grad[3] else None
        return _stack([A[k].t() @ x_p[k] for k in range(K)]), None, None, g_x


def sparse_topk(params: dict[str, Tensor], x_p: Tensor, k: int, subtract_b_D: bool = False,
                rescale: bool = False) -> dict[str, Tensor]:
    """TopK forward touching only the active latents. Returns ``z`` (K, B, n_q, the pre-activations TopK ranks, no
    autograd), ``vals`` and ``idx`` (K, B, k), ``x_hat`` (K, B, n_r), and what :func:`sparse_aux` needs.

    The dense z = W_E x_p + b_E is computed once without autograd, to choose the k latents and read their values;
    :class:`SparseEncode` sends the encoder's gradient to only those rows and :class:`SparseDecode` reads and
    updates only those decoder columns. Standard practice (SAELens's TopK): ``subtract_b_D`` (input minus b_D) and
    ``rescale`` (pre-activations times the decoder-column norms, codes divided by them before decoding). Same numbers as the dense path up to float
    rounding (tested).
    """
    W_E, W_D = params["W_E"], params["W_D"]
    x_in = x_p - params["b_D"][:, None] if subtract_b_D else x_p
    norms = W_D.norm(dim=1) if rescale else None                      # (K, n_q), with autograd
    with torch.no_grad():
        z_pre = torch.bmm(x_in, W_E.transpose(1, 2))
        if "b_E" in params:
            z_pre += params["b_E"][:, None]
        z = z_pre * norms.detach()[:, None] if rescale else z_pre
        idx = z.topk(k, dim=-1).indices.sort(dim=-1).values               # (K, B, k), sorted for CSR
    vals = _sparse_values(params, z_pre, idx, x_in, norms)
    vals = torch.relu(vals)
    x_hat = SparseDecode.apply(vals if norms is None else vals / _gather(norms, idx).clamp_min(1e-12), idx, W_D)
    if "b_D" in params:
        x_hat = x_hat + params["b_D"][:, None]
    return {"z": z, "vals": vals, "idx": idx, "x_hat": x_hat, "z_pre": z_pre, "x_in": x_in}


def _gather(per_latent: Tensor, idx: Tensor) -> Tensor:
    """per_latent (K, n_q) read at idx (K, B, j): (K, B, j), with autograd (its backward scatters into (K, n_q),
    not into a (K, B, n_q) expansion)."""
    K, B, j = idx.shape
    return per_latent.gather(1, idx.reshape(K, B * j)).reshape(K, B, j)


def _sparse_values(params, z_pre, idx, x_in, norms=None) -> Tensor:
    """The pre-activations at idx with autograd to W_E's rows, b_E and the input (times the norms if given)."""
    vals = SparseEncode.apply(params["W_E"], z_pre, idx, x_in)
    if "b_E" in params:   # z_pre already holds b_E; this adds b_E's gradient (value + b_E - b_E)
        b = _gather(params["b_E"], idx)
        vals = vals + (b - b.detach())
    return vals if norms is None else vals * _gather(norms, idx)


def sparse_aux(params: dict[str, Tensor], fwd: dict[str, Tensor], dead: Tensor, k_aux: int) -> Tensor:
    """AuxK's reconstruction e_hat (K, B, n_r) from the k_aux largest positive pre-activations among ``dead``
    (K, n_q) latents, without decoder bias (Gao et al. 2024), reading only those encoder rows and decoder columns.
    ``fwd`` is :func:`sparse_topk`'s output; standard practice's norm rescaling cancels here (codes z n / n)."""
    with torch.no_grad():
        ranked = fwd["z"].masked_fill(~dead[:, None], float("-inf"))
        idx = ranked.topk(k_aux, dim=-1).indices.sort(dim=-1).values
        keep = (_gather(dead.to(ranked.dtype), idx) > 0) & (ranked.gather(2, idx) > 0)
    vals = _sparse_values(params, fwd["z_pre"], idx, fwd["x_in"]) * keep
    return SparseDecode.apply(vals, idx, params["W_D"])
