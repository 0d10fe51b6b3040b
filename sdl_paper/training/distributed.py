"""Data-parallel training through torch.distributed (launch with ``torchrun --nproc_per_node N``).

Every process draws the same global batch from the same generators and keeps its 1/N shard, gradients are averaged
with all-reduce, and every process then takes the same Adam step; so N processes follow the run of one process with
the same global batch (up to float summation order; tested on CPU with gloo and two processes). BatchTopK and
Matryoshka choose their top k * B within each process's shard, as other libraries' data-parallel runs do.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .state import row_major


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    d = torch.distributed
    if d.is_available() and d.is_initialized():
        return d.get_rank(), d.get_world_size()
    return 0, 1


def shard(x: Tensor, batch_dim: int = 1) -> Tensor:
    """This process's contiguous 1/N slice of a global batch along ``batch_dim``."""
    rank, size = world()
    if size == 1:
        return x
    n = x.shape[batch_dim] // size
    return x.narrow(batch_dim, rank * n, n)


def all_mean(t: Tensor) -> Tensor:
    """In-place mean over processes (a no-op with one process). A column-major tensor (the decoder's gradient) is
    reduced through its contiguous transpose, a view of the same memory (NCCL refuses non-contiguous tensors)."""
    _, size = world()
    if size > 1:
        (view,) = row_major(t)
        buf = view if view.is_contiguous() else view.contiguous()
        torch.distributed.all_reduce(buf)
        buf /= size
        if buf is not view:
            view.copy_(buf)
    return t


def all_any(mask: Tensor) -> Tensor:
    """Elementwise OR of a boolean mask over processes."""
    _, size = world()
    if size == 1:
        return mask
    m = mask.to(torch.int32)
    torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX)
    return m.bool()


def init_from_env(backend: str = "gloo") -> None:
    """Initialise the default process group from torchrun's environment variables (if not yet initialised)."""
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
