"""Our side of the SAELens layout; SAELens itself loads our exports in benchmarks/saelens_interop.py (and in the
last test here, where SAELens is installed)."""
import json

import pytest
import torch
from safetensors.torch import save_file

from sdl_paper import Config, Dictionary, export_saelens, import_saelens, train
from sdl_paper.model.audit import audit
from sdl_paper.model.methods import METHODS
from sdl_paper.data import ground_truth


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def _trained(method, **kw):
    k = {"k": 2} if METHODS[method].uses_k else {}       # k is refused where it has no effect
    cfg = Config(method=method, steps=30, batch_size=32, lr=1e-2, bias=True, **k, **kw)
    d = Dictionary.from_state(train(_gt(), cfg, 16, [0], progress=False))
    d.params["b_E"] += 0.05 * torch.randn_like(d.params["b_E"])     # biases that matter
    d.params["b_D"] += 0.3 * torch.randn_like(d.params["b_D"])
    return d


def _saelens_encode(path, x):
    """SAELens's documented inference formulas, computed from the files (see sdl_paper.io.saelens)."""
    from safetensors.torch import load_file
    cfg, W = json.loads((path / "cfg.json").read_text()), load_file(str(path / "sae_weights.safetensors"))
    h = (x - W["b_dec"]) @ W["W_enc"] + W["b_enc"]
    if cfg["architecture"] == "topk":
        v, i = h.topk(cfg["k"], dim=-1)
        return torch.zeros_like(h).scatter(-1, i, torch.relu(v))
    if cfg["architecture"] == "jumprelu":
        return torch.relu(h) * (h > W["threshold"])
    return torch.relu(h)


@pytest.mark.parametrize("method", ["topk", "relu_dec", "jumprelu"])
def test_export_gives_saelens_files_with_the_same_codes_and_import_inverts_it(tmp_path, method):
    d, x = _trained(method), torch.randn(64, 8)
    export_saelens(d, tmp_path / "sae")
    assert torch.allclose(_saelens_encode(tmp_path / "sae", x), d.encode(x), atol=1e-5)
    back = import_saelens(tmp_path / "sae")
    assert torch.allclose(back.encode(x), d.encode(x), atol=1e-5)
    assert torch.allclose(back.decode(back.encode(x)), d.decode(d.encode(x)), atol=1e-5)


def test_import_folds_a_rescaling_topk_and_refuses_what_it_cannot_represent(tmp_path):
    g = torch.Generator().manual_seed(0)
    W = {"W_enc": torch.randn(8, 16, generator=g), "W_dec": 3 * torch.randn(16, 8, generator=g),
         "b_enc": torch.randn(16, generator=g), "b_dec": torch.randn(8, generator=g)}
    (tmp_path / "sae").mkdir()
    save_file(W, str(tmp_path / "sae" / "sae_weights.safetensors"))
    cfg = {"architecture": "topk", "d_in": 8, "d_sae": 16, "k": 3, "rescale_acts_by_decoder_norm": True}
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg))
    x, norms = torch.randn(32, 8, generator=g), W["W_dec"].norm(dim=1)
    h = ((x - W["b_dec"]) @ W["W_enc"] + W["b_enc"]) * norms
    v, i = h.topk(3, dim=-1)
    z = torch.zeros_like(h).scatter(-1, i, torch.relu(v))
    x_hat = (z / norms) @ W["W_dec"] + W["b_dec"]
    d = import_saelens(tmp_path / "sae")
    assert torch.allclose(d.encode(x), z, atol=1e-4) and torch.allclose(d.decode(d.encode(x)), x_hat, atol=1e-4)
    report = audit(d, truth=torch.eye(8), data=x)
    assert report["partial_minimum"].startswith("refused: L~ is the paper's bias-free loss")
    assert report["pattern_dead"] + report["monosemantic"] + report["polysemantic"] == 16
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg | {"architecture": "gated"}))
    with pytest.raises(ValueError, match="'gated' is not supported"):
        import_saelens(tmp_path / "sae")
    with pytest.raises(ValueError, match="no SAELens inference equivalent"):
        export_saelens(_trained("batchtopk"), tmp_path / "b")


def test_saelens_itself_loads_our_export_with_the_same_codes(tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="SAELens lives in .venv-bench (make bench), not here")
    d, x = _trained("topk"), torch.randn(64, 8)
    export_saelens(d, tmp_path / "sae")
    sae = sae_lens.SAE.load_from_disk(str(tmp_path / "sae"))
    assert torch.allclose(sae.encode(x), d.encode(x), atol=1e-5)
