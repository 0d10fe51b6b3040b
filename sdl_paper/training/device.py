"""Where tensors live: CUDA when a CUDA build of torch sees a GPU, else the CPU.

Everything in the package runs on the CPU; the GPU is only ever an option.
"""
from __future__ import annotations

import torch


def default_device(prefer: str | None = None) -> torch.device:
    """The device to compute on.

    Args:
        prefer: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ... or ``None`` for automatic (CUDA if available).

    Raises:
        ValueError: when ``prefer`` names CUDA but no CUDA device is available.
    """
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={prefer!r} requested but torch {torch.__version__} sees no CUDA device; use 'cpu' or None")
    return device


def describe(device: torch.device) -> str:
    """A one-line description of ``device`` for logs and benchmark tables."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
