"""The paper's instantiation table as data: each SDL method is the same model fed a different (x_p, x_r) view.

On a synthetic :class:`~sdl_paper.data.ground_truth.World` with at least two layers (layer 0 = a representation, layer 1 = a
second site, for example an MLP's output), each method picks its view and whether its weights are tied.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..data.ground_truth import GroundTruth, World
from .framework import SDL


@dataclass(frozen=True)
class Instantiation:
    """One row of the paper's table: what the encoder reads, what the decoder reconstructs, tied or not."""

    name: str
    x_p: str            # the paper's description of the input
    x_r: str            # the paper's description of the target
    tied: bool
    inputs: tuple[int, ...]   # world layers stacked into x_p
    targets: tuple[int, ...]  # world layers stacked into x_r

    def view(self, world: World) -> GroundTruth:
        """The (W_p, W_r) ground truth this method sees in ``world``."""
        return world.view(list(self.inputs), list(self.targets))

    def model(self, gt: GroundTruth, n_q: int, activation: str = "relu", **kwargs) -> SDL:
        """An :class:`~sdl_paper.theory.framework.SDL` of the right shapes for ``gt`` (kwargs go to SDL)."""
        return SDL(gt.n_p, n_q, gt.n_r, activation=activation, tied=self.tied, **kwargs)


INSTANTIATIONS = {
    m.name: m for m in [
        Instantiation("SAE", "a layer's representation", "the same representation", False, (0,), (0,)),
        Instantiation("tied SAE", "a layer's representation", "the same representation, W_D = W_E^T", True,
                      (0,), (0,)),
        Instantiation("transcoder", "input of an MLP block", "output of that MLP block", False, (0,), (1,)),
        Instantiation("crosscoder", "concatenation of m sources", "concatenation of the m targets", False,
                      (0, 1), (0, 1)),
    ]
}


def get(name: str) -> Instantiation:
    """Look up an instantiation by name (case-insensitive)."""
    for key, inst in INSTANTIATIONS.items():
        if key.lower() == name.lower():
            return inst
    raise ValueError(f"unknown SDL method {name!r}; known: {', '.join(INSTANTIATIONS)}")


def table() -> pd.DataFrame:
    """The instantiation table (one row per method), as printed in the framework chapter."""
    return pd.DataFrame(
        [{"method": m.name, "input x_p": m.x_p, "target x_r": m.x_r, "tied": m.tied,
          "world layers in": list(m.inputs), "world layers out": list(m.targets)} for m in INSTANTIATIONS.values()]
    ).set_index("method")
