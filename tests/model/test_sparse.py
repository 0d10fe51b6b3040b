import pytest
import torch

from sdl_paper.model import sparse as S
from sdl_paper.model import Config
from sdl_paper.training import objective

K, B, n_q, n_p = 2, 64, 16, 8


def _params(bias: bool, tied: bool = False, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    P = {"W_E": torch.randn(K, n_q, n_p, generator=g)}
    if not tied:   # column-major, as the trainer stores it, with uneven column norms (standard practice uses them)
        P["W_D"] = (torch.randn(K, n_q, n_p, generator=g) * (0.5 + torch.rand(K, n_q, 1, generator=g))).transpose(1, 2)
    if bias:
        P |= {"b_E": torch.randn(K, n_q, generator=g), "b_D": torch.randn(K, n_p, generator=g)}
    return P


def _grads(P, x, cfg, dead, anchors, sparse, ws):
    P = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    w = S.Workspace(P) if ws else None
    if w is not None:
        w.attach(P)
    terms = objective(P, x, x, Config.theory(**(cfg | {"sparse": sparse})), dead, anchors, w)
    terms["total"].sum().backward()
    return {k: v.grad.clone() for k, v in P.items()}, terms


@pytest.mark.parametrize("rows_by", ["index_add", "csr"])
@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize("bias,practice,tied", [(False, "theory", False), (True, "theory", False),
                                               (True, "standard", False), (False, "theory", True),
                                               (True, "theory", True)])      # standard practice is untied
def test_workspace_step_gives_the_dense_gradients(bias, practice, anchored, tied, rows_by, monkeypatch):
    # the trainer's path: gradients added into the workspace's buffers, anchoring's by autograd into the same ones;
    # the gradient rows by index_add_ (these small shapes) and by CSR products (the large shapes' path)
    if rows_by == "csr":
        monkeypatch.setattr(S, "ROWS_BY_INDEX_ADD", 0)
    torch.manual_seed(0)
    P, x = _params(bias, tied), torch.randn(K, B, n_p)
    dead = torch.rand(K, n_q) < 0.5
    cfg = dict(method="topk", k=3, bias=bias, remedy="auxk", practice=practice, tied=tied,
               anchors=2 if anchored else 0, anchor_coef=(0.3, 0.7))
    anchors = {"A_p": torch.randn(2, n_p), "A_r": torch.randn(n_p, 2)} if anchored else None
    (gd, td), (gs, ts) = (_grads(P, x, cfg, dead, anchors, sparse, ws) for sparse, ws in ((False, False),
                                                                                         (True, True)))
    assert set(gd) == set(gs)
    for k in gd:
        assert torch.allclose(gd[k], gs[k], rtol=1e-5, atol=1e-5), k
    for k in ("rec", "aux", "penalty", "total", "L0"):
        assert torch.allclose(td[k], ts[k], rtol=1e-5, atol=1e-6), k
    assert (ts["aux"] > 0).all()                    # AuxK ran, so its gradients were compared too


def test_gradients_reach_the_data_as_in_the_dense_path():
    torch.manual_seed(1)
    P, out = _params(True), []
    x_p, x_r = torch.randn(K, B, n_p), torch.randn(K, B, n_p)
    for sparse in (False, True):
        xp, xr = x_p.clone().requires_grad_(True), x_r.clone().requires_grad_(True)
        cfg = Config(method="topk", k=3, bias=True, practice="standard", sparse=sparse)
        objective(P, xp, xr, cfg)["total"].sum().backward()
        out.append((xp.grad, xr.grad))
    for dense, sparse in zip(*out):
        assert torch.allclose(dense, sparse, rtol=1e-5, atol=1e-6)


def test_products_equal_their_dense_forms():
    torch.manual_seed(2)
    idx = torch.randn(B, n_q).topk(3, -1).indices.sort(-1).values
    vals, X, W = torch.randn(B, 3), torch.randn(B, 5), torch.randn(n_q, 5)
    A = torch.zeros(B, n_q).scatter(1, idx, vals)
    for plan in (None, (), S.latent_order(idx, n_q)):          # chosen, index_add_, CSR
        assert torch.allclose(S.rows_product(vals, idx, X, n_q, plan=plan), A.T @ X, atol=1e-5)
        out = torch.ones(n_q, 5)
        assert torch.allclose(S.rows_product(vals, idx, X, n_q, out=out, plan=plan), 1 + A.T @ X, atol=1e-5)
    assert torch.allclose(S.sampled_dots(X, W.T, idx), (X @ W.T).gather(1, idx), atol=1e-5)
    assert torch.allclose(S.bag(idx, W, vals), A @ W, atol=1e-5)


def test_plan_for_takes_index_add_while_the_rows_are_small():
    idx = torch.randint(0, n_q, (B, 3))
    assert S.plan_for(idx, S.ROWS_BY_INDEX_ADD // idx.numel(), n_q) == ()
    order, crow, col = S.plan_for(idx, S.ROWS_BY_INDEX_ADD // idx.numel() + 1, n_q)
    assert crow[-1] == idx.numel()


def test_workspace_reuses_its_buffers_and_attach_zeroes_them():
    P = {k: v.requires_grad_(True) for k, v in _params(True).items()}
    ws = S.Workspace(P)
    assert ws.buffer("z", (2, 3), P["W_E"]) is ws.buffer("z", (2, 3), P["W_E"])
    ptrs = {k: g.data_ptr() for k, g in ws.grads.items()}
    cfg = Config.theory(method="topk", k=3, bias=True, sparse=True)
    for _ in range(2):
        ws.attach(P)
        objective(P, torch.randn(K, B, n_p), torch.randn(K, B, n_p), cfg, ws=ws)["total"].sum().backward()
        first = {k: v.grad.clone() for k, v in P.items()} if _ == 0 else first
    assert {k: P[k].grad.data_ptr() for k in P} == ptrs           # the same tensors, not fresh ones
    assert not torch.equal(P["W_E"].grad, first["W_E"])           # the second step's gradient, not a sum of two
    assert not torch.equal(P["W_E"].grad, 2 * first["W_E"])
    assert ws.sink("W_D").data_ptr() == ptrs["W_D"]


def test_tied_workspace_routes_the_decoder_gradient_into_the_encoder():
    P = {k: v.requires_grad_(True) for k, v in _params(False, tied=True).items()}
    ws = S.Workspace(P)
    assert set(ws.grads) == {"W_E"} and ws.sink("W_D").shape == (K, n_p, n_q)
    assert ws.sink("W_D").data_ptr() == ws.grads["W_E"].data_ptr()


def test_zero_decoder_column_under_rescaling_stays_finite():
    torch.manual_seed(3)
    P = {k: v.clone() for k, v in _params(True).items()}
    P["W_D"][:, :, 0] = 0.0
    P = {k: v.requires_grad_(True) for k, v in P.items()}
    cfg = Config(method="topk", k=3, bias=True, practice="standard", sparse=True)
    objective(P, torch.randn(K, B, n_p), torch.randn(K, B, n_p), cfg)["total"].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in P.values())


def test_bf16_autocast_runs_the_encoder_product_in_bf16_and_stays_close():
    torch.manual_seed(4)
    P, x = _params(True), torch.randn(K, B, n_p)
    cfg = Config.theory(method="topk", k=3, bias=True, sparse=True)
    exact = objective(P, x, x, cfg)["rec"]
    with torch.autocast("cpu", torch.bfloat16):
        low = objective(P, x, x, cfg)["rec"]
    assert low.dtype == torch.float32 and not torch.equal(low, exact)
    assert torch.allclose(low, exact, rtol=0.05)


def test_auxk_needs_its_weight():
    P = _params(False)
    with pytest.raises(ValueError, match="aux_w"):
        S.sparse_topk(P, torch.randn(K, B, n_p), torch.randn(K, B, n_p), 3, dead=torch.ones(K, n_q, dtype=bool),
                      k_aux=4)


@pytest.mark.parametrize("B,k", [(64, 3), (2048, 16)])         # the short-array sort and the stable sort
def test_latent_order_is_the_stable_order_by_latent(B, k):
    idx = torch.randn(B, 40, generator=torch.Generator().manual_seed(5)).topk(k, -1).indices
    order, crow, col = S.latent_order(idx, 40)
    flat = idx.reshape(-1)
    assert torch.equal(order, flat.argsort(stable=True))
    assert torch.equal(crow[1:] - crow[:-1], torch.bincount(flat, minlength=40)) and crow[0] == 0
    assert torch.equal(col, order // k)


@pytest.mark.parametrize("n,k", [(1024, 32), (4096, 4), (1024, 4), (1024, 1), (100, 4),    # two rounds
                                 (64, 32), (1026, 40), (1022, 4), (16, 4), (1024, 8)])     # torch.topk
def test_top_k_finds_torch_topk_values_and_their_positions(n, k):
    z = torch.randn(2, 50, n, generator=torch.Generator().manual_seed(6))
    z[1, 0, : n // 2] = float("-inf")                     # AuxK's ranking: the live latents at -inf
    val, idx = S.top_k(z, k)
    ref = z.topk(k, dim=-1)
    assert torch.equal(val, ref.values)                   # descending, like torch.topk
    assert torch.equal(z.gather(-1, idx), val)
    assert torch.equal(idx.sort(-1).values[z.isfinite().all(-1)], ref.indices.sort(-1).values[z.isfinite().all(-1)])
    assert (idx.sort(-1).values.diff(dim=-1) > 0).all()   # distinct positions


@pytest.mark.parametrize("k", [3, 12])                    # fewer than every model's dead latents; more than some
def test_dead_top_k_is_the_top_k_with_the_live_latents_at_minus_infinity(k):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(3, 20, 40, generator=g)
    dead = torch.zeros(3, 40, dtype=torch.bool)
    dead[0, ::2], dead[1, :5], dead[2, 7] = True, True, True      # 20, 5 and 1 dead latents
    val, idx = S.dead_top_k(z, dead, k)
    ref = torch.where(dead[:, None], z, float("-inf")).topk(min(k, 20), dim=-1)
    assert val.shape == (3, 20, min(k, 20))
    assert torch.equal(val, ref.values)
    finite = val.isfinite()
    assert torch.equal(z.gather(2, idx)[finite], val[finite])
    assert dead.gather(1, idx.reshape(3, -1)).reshape(idx.shape)[finite].all()
    one = S.dead_top_k(z[1:2], dead[1:2], k)               # one model: no padding
    assert torch.equal(one[0], z[1:2, :, :5].topk(min(k, 5), dim=-1).values)
