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
    sparse product G_k^T x_p[k], which touches only the chosen encoder rows. z: (K, B, n_q); W_E: (K, n_q, n_p);
    idx: (K, B, k), sorted within rows."""

    @staticmethod
    def forward(ctx, W_E, z, idx, x_p):
        ctx.save_for_backward(idx, x_p.float())
        ctx.shape = W_E.shape
        return z.gather(2, idx).float()

    @staticmethod
    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def backward(ctx, g_vals):
        idx, x_p = ctx.saved_tensors
        g_vals = g_vals.float()
        K, n_q, n_p = ctx.shape
        return _stack([_csr(g_vals[k], idx[k], n_q).t() @ x_p[k] for k in range(K)]), None, None, None


def sparse_topk(params: dict[str, Tensor], x_p: Tensor, k: int):
    """TopK forward touching only the active latents: (z, values (K, B, k), indices (K, B, k), x_hat (K, B, n_r)).

    The dense z = W_E x_p is computed once without autograd, to choose the k latents and read their values;
    :class:`SparseEncode` sends the encoder's gradient to only those rows and :class:`SparseDecode` reads and
    updates only those decoder columns. Same numbers as the dense path up to float rounding (tested).
    """
    W_E, W_D = params["W_E"], params["W_D"]
    with torch.no_grad():
        z = torch.bmm(x_p, W_E.transpose(1, 2))
        if "b_E" in params:
            z += params["b_E"][:, None]
        idx = z.topk(k, dim=-1).indices.sort(dim=-1).values               # (K, B, k), sorted for CSR
    vals = SparseEncode.apply(W_E, z, idx, x_p)
    if "b_E" in params:   # z already holds b_E; this adds b_E's gradient (value + b_E - b_E)
        b = params["b_E"][:, None].expand(-1, idx.shape[1], -1).gather(2, idx)
        vals = vals + (b - b.detach())
    vals = torch.relu(vals)
    x_hat = SparseDecode.apply(vals, idx, W_D)
    if "b_D" in params:
        x_hat = x_hat + params["b_D"][:, None]
    return z, vals, idx, x_hat
