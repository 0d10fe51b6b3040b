"""The real-activations chapter's method table: a dictionary whose first latents are the class directions
recovers them on both sides, a random one does not, and projecting on the class span cannot lower M_IP."""
import pytest
import torch

from sdl_paper.model import Config
from sdl_paper.studies import real_recovery as rr
from sdl_paper.training import init_state

HIDDEN, N, N_Q = 6, 3, 5


def test_method_table_on_a_perfect_and_a_random_dictionary():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(HIDDEN, N, generator=g)
    W = W / W.norm(dim=0, keepdim=True)
    cfg = Config.theory(method="topk", k=2)
    perfect = init_state(2, HIDDEN, N_Q, HIDDEN, cfg, [0, 1])
    perfect.params["W_E"][:, :N] = W.T
    perfect.params["W_D"][:, :, :N] = W
    random = init_state(2, HIDDEN, N_Q, HIDDEN, cfg, [0, 1])
    perfect.config = random.config = cfg.to_dict()             # as train() leaves it
    x_test = torch.randn(40, HIDDEN, generator=g)
    P_W = W @ torch.linalg.pinv(W)
    t = rr.method_table({"perfect": perfect, "random": random}, W, x_test, P_W, [3, 4], 0.95)
    assert list(t.method) == ["perfect"] * 2 + ["random"] * 2 and list(t.seed) == [3, 4, 3, 4]
    p, r = t[t.method == "perfect"], t[t.method == "random"]
    for col in ("M_IP enc", "M_IP dec", "M_GT enc", "M_GT dec", "M_IP enc, class span"):
        assert p[col].tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert (r["M_IP dec"] < 1 - 1e-3).all()
    assert (t["M_IP enc, class span"] >= t["M_IP enc"] - 1e-6).all()   # projecting can only raise |cos|
    assert ((t["L0"] > 0) & (t["L0"] <= 2 + 1e-9)).all()                # TopK_2
