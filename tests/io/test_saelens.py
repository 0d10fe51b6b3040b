"""Our side of the SAELens layout; SAELens itself loads our exports in benchmarks/saelens_interop.py (and in the
last test here, where SAELens is installed)."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from sdl_paper import Config, Dictionary, as_source, export_saelens, import_saelens, train
from sdl_paper.model.audit import audit, reconstructs_its_input
from sdl_paper.model.methods import METHODS
from sdl_paper.data import ground_truth


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def _trained(method, **kw):
    k = {"k": 2} if METHODS[method].uses_k else {}       # k is refused where it has no effect
    cfg = Config.theory(method=method, steps=30, batch_size=32, lr=1e-2, bias=True, **k, **kw)
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


def _transcoder(cfg, n_r):
    """A dictionary trained to map inputs x (512, 8) to an MLP's outputs (512, n_r), biases perturbed; and x."""
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(512, 8, generator=g), torch.randn(8, n_r, generator=g)
    d = Dictionary.from_state(train(as_source(x, torch.relu(x @ W)), cfg, 16, [0], progress=False))
    d.params["b_E"] += 0.05 * torch.randn_like(d.params["b_E"])
    d.params["b_D"] += 0.3 * torch.randn_like(d.params["b_D"])     # a b_dec subtracted from x would show
    if "log_theta" in d.params:                                      # thresholds of several sizes
        d.params["log_theta"] += 0.5 * torch.randn_like(d.params["log_theta"])
    return d, x


def _saelens_transcode(path, x):
    """SAELens's transcoder forward (sae_lens/saes/transcoder.py), from the files: codes and outputs."""
    from safetensors.torch import load_file
    cfg, W = json.loads((path / "cfg.json").read_text()), load_file(str(path / "sae_weights.safetensors"))
    h = x @ W["W_enc"] + W["b_enc"]                                  # no b_dec on the input side
    z = torch.relu(h) * (h > W["threshold"]) if cfg["architecture"] == "jumprelu_transcoder" else torch.relu(h)
    return z, z @ W["W_dec"] + W["b_dec"]


@pytest.mark.parametrize("cfg, n_r, arch", [
    (Config.theory(method="relu", bias=True, steps=30, batch_size=32, lr=1e-2), 8, "transcoder"),
    (Config.standard("relu_dec", subtract_b_D=False, steps=30, batch_size=32, lr=1e-2), 6, "transcoder"),
    (Config.theory(method="jumprelu", bias=True, steps=30, batch_size=32, lr=1e-2), 6, "jumprelu_transcoder"),
])
def test_a_transcoder_exports_as_saelens_transcoder_and_imports_back(tmp_path, cfg, n_r, arch):
    d, _ = _transcoder(cfg, n_r)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    export_saelens(d, tmp_path / "tc")
    written = json.loads((tmp_path / "tc" / "cfg.json").read_text())
    assert written["architecture"] == arch and written["apply_b_dec_to_input"] is False
    assert (written["d_in"], written["d_sae"], written["d_out"]) == (8, 16, n_r)
    z, out = _saelens_transcode(tmp_path / "tc", x)
    assert (z != 0).any() and (z == 0).any()                           # codes that are neither all on nor off
    assert torch.allclose(z, d.encode(x), atol=1e-5) and torch.allclose(out, d.decode(d.encode(x)), atol=1e-5)
    back = import_saelens(tmp_path / "tc")
    assert back.sizes == d.sizes and reconstructs_its_input(back) is False
    assert torch.allclose(back.encode(x), d.encode(x), atol=1e-5)
    assert torch.allclose(back.decode(back.encode(x)), d.decode(d.encode(x)), atol=1e-5)
    with pytest.raises(ValueError, match="pass targets="):           # audited as the transcoder it is
        audit(back, data=x)
    export_saelens(back, tmp_path / "again")                         # re-exported as a transcoder, not an SAE
    assert json.loads((tmp_path / "again" / "cfg.json").read_text())["architecture"] == arch


def test_a_transcoder_saelens_cannot_represent_is_refused_before_anything_is_written(tmp_path):
    topk, _ = _transcoder(Config.theory(method="topk", k=2, bias=True, steps=5, batch_size=32), 6)
    with pytest.raises(ValueError, match="no topk transcoder.*mislabel.*exportable: relu, relu_dec, jumprelu"):
        export_saelens(topk, tmp_path / "topk")
    override, _ = _transcoder(Config.theory(method="relu", activation="relu>topk:1", bias=True, steps=5,
                                            batch_size=32), 8)
    with pytest.raises(ValueError, match="no SAELens inference equivalent"):
        export_saelens(override, tmp_path / "override")
    g = torch.Generator().manual_seed(0)
    P = {"W_E": torch.randn(1, 16, 8, generator=g), "W_D": torch.randn(1, 8, 16, generator=g),
         "b_E": torch.randn(1, 16, generator=g), "b_D": torch.randn(1, 8, generator=g)}
    shifted = Dictionary(P, Config.standard("relu_dec"), [0], {"source": {"autoencoder": False}})
    with pytest.raises(ValueError, match="subtract_b_D=True.*allowed for a transcoder: subtract_b_D=False"):
        export_saelens(shifted, tmp_path / "shifted")
    assert not any(tmp_path.iterdir())                               # no folder, no temporary left behind


def test_import_refuses_a_transcoder_folder_it_cannot_represent(tmp_path):
    d, _ = _transcoder(Config.theory(method="jumprelu", bias=True, steps=5, batch_size=32), 6)
    export_saelens(d, tmp_path / "tc")
    cfg = json.loads((tmp_path / "tc" / "cfg.json").read_text())
    W = load_file(str(tmp_path / "tc" / "sae_weights.safetensors"))
    cases = [(cfg | {"architecture": "skip_transcoder"}, W, "'skip_transcoder' is not supported.*W_skip"),
             (cfg | {"apply_b_dec_to_input": True}, W, "needs apply_b_dec_to_input=false"),
             ({k: v for k, v in cfg.items() if k != "apply_b_dec_to_input"}, W, "needs apply_b_dec_to_input"),
             (cfg | {"d_out": 8}, W, "declares {'d_out': 8}"),
             (cfg, W | {"b_dec": torch.zeros(8)}, "inconsistent shapes"),
             (cfg, {k: v for k, v in W.items() if k != "threshold"}, r"tensors \['threshold'\] missing"),
             (cfg, W | {"b_enc": W["b_enc"].double().fill_(float("inf"))}, "NaN or infinite")]
    for i, (c, w, match) in enumerate(cases):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "cfg.json").write_text(json.dumps(c))
        save_file(w, str(tmp_path / str(i) / "sae_weights.safetensors"))
        with pytest.raises(ValueError, match=match):
            import_saelens(tmp_path / str(i))


def test_saelens_itself_loads_our_transcoder_with_the_same_codes_and_outputs(tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="SAELens lives in .venv-bench (make bench), not here")
    d, _ = _transcoder(Config.theory(method="jumprelu", bias=True, steps=30, batch_size=32, lr=1e-2), 6)
    x = torch.randn(64, 8)
    export_saelens(d, tmp_path / "tc")
    sae = sae_lens.SAE.load_from_disk(str(tmp_path / "tc"))
    assert type(sae).__name__ == "JumpReLUTranscoder"
    with torch.no_grad():
        assert torch.allclose(sae.encode(x), d.encode(x), atol=1e-5)
        assert torch.allclose(sae(x), d.decode(d.encode(x)), atol=1e-5)
