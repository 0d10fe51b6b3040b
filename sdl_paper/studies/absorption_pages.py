"""The analyses behind the absorption-experiments chapter that are longer than a page's cell: the control table,
which sets the absorption score of each (method, world) at its strongest sparsity pressure against the same
setting with children independent of their parents.
"""
from __future__ import annotations

import pandas as pd

from ..theory.metrics import CONTROL_SHARE


def control_table(pairs: pd.DataFrame, per_seed: pd.DataFrame, rho_hi: float, l1s: list[float], ks: list[int],
                  worlds) -> dict:
    """Full absorption in the hierarchies against their controls, at the strongest pressure and co-occurrence.

    Args:
        pairs: one row per scored (parent, child) pair, seed and case, with columns ``method``, ``world``,
            ``pressure``, ``rho``, ``control`` and ``parent_in_child`` (cos of the child latent's decoder with w_P).
        per_seed: one row per (case, seed) with the mean ``full`` absorption and ``silent`` parent rate.
        rho_hi: the co-occurrence rho of the comparison; l1s, ks: the L1 coefficients and k values swept (the
            strongest pressure is the largest L1 for "ReLU..." methods, else the smallest k); worlds: the worlds.

    Returns ``{"table": ...}``, one row per (method, world) of ReLU + L1 and TopK: mean and s.e. over seeds of full
    absorption in the hierarchy and control, the control's silent-parent rate and the mean parent-in-child cosine
    of both; ``near_zero`` (bool): every control is below a tenth of its hierarchy; ``every_seed`` (bool): below it
    in every seed.
    """
    base = per_seed[(per_seed.rho == rho_hi)]

    def strongest(meth, hier, control=False):
        pressure = max(l1s) if meth.startswith("ReLU") else min(ks)
        sel = (base.method == meth) & (base.world == hier) & (base.pressure == pressure)
        return base[sel & (base.control == control)].set_index("seed")

    def pic(meth, hier, control=False):
        sel = pairs[(pairs.method == meth) & (pairs.world == hier) & (pairs.control == control)]
        strength = max(l1s) if meth.startswith("ReLU") else min(ks)
        return sel[(sel.pressure == strength) & (sel.rho == rho_hi)]["parent_in_child"]

    methods = ("ReLU + L1", "TopK")
    ctrl = pd.DataFrame({(m, h): {"full, hierarchy": strongest(m, h)["full"].mean(),
                                  "se": strongest(m, h)["full"].sem(),
                                  "full, control": strongest(m, h, True)["full"].mean(),
                                  "se, control": strongest(m, h, True)["full"].sem(),
                                  "parent silent, control": strongest(m, h, True)["silent"].mean(),
                                  "parent in child": pic(m, h).mean(),
                                  "control": pic(m, h, True).mean()}
                         for m in methods for h in worlds}).T
    near_zero = all(ctrl["full, control"] < CONTROL_SHARE * ctrl["full, hierarchy"])
    every_seed = all((strongest(m, h, True)["full"] < strongest(m, h)["full"]).all()
                     for m in methods for h in worlds)
    return {"table": ctrl, "near_zero": near_zero, "every_seed": every_seed}
