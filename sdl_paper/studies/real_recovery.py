"""The analysis behind the real-activations chapter that is longer than a page's cell: recovery of the class-mean
directions by each trained dictionary, read on its decoder columns, its encoder rows and its encoder rows
projected on the span of the class means, next to the audit's L0, explained variance and dead fraction.
"""
from __future__ import annotations

import pandas as pd
from torch import Tensor

from ..model.audit import audit
from ..model.dictionary import Dictionary
from ..theory import metrics


def method_table(runs: dict, W: Tensor, x_test: Tensor, P_W: Tensor, seeds: list[int], tau: float) -> pd.DataFrame:
    """One row per (method, seed) of the trained dictionaries.

    Args:
        runs: ``{method: state}``, K = len(seeds) dictionaries per state, W_E (K, n_q, hidden).
        W: (hidden, n) the class-mean directions w^i (unit columns); x_test: (N, hidden) held-out activations.
        P_W: (hidden, hidden) the projection on the span of W.

    Columns: ``method``, ``seed``, ``L0``, ``explained var``, ``dead (test)`` (from :func:`sdl_paper.model.audit`
    on ``x_test``), ``M_GT enc``, ``M_IP enc``, ``M_GT dec``, ``M_IP dec`` (at ``tau``) and ``M_IP enc, class
    span``: M_IP of the encoder rows projected by P_W.
    """
    rows = []
    for name, st in runs.items():
        d = Dictionary.from_state(st)
        for i, s in enumerate(seeds):
            a = audit(d, truth=W, data=x_test, model=i, tau=tau)
            sub = metrics.max_inner_product(W, encoder=st.params["W_E"][i] @ P_W)
            rows.append({"method": name, "seed": s, "L0": a["L0"],
                         "explained var": a["explained_variance"],
                         "dead (test)": a["sample_dead_fraction"],
                         "M_GT enc": a["M_GT_enc"], "M_IP enc": a["M_IP_enc"],
                         "M_GT dec": a["M_GT_dec"], "M_IP dec": a["M_IP_dec"],
                         "M_IP enc, class span": sub})
    return pd.DataFrame(rows)
