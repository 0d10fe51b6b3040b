"""SAELens interop, both ways, through SAELens's on-disk layout (checked against SAELens 6.54.12 itself:
``benchmarks/saelens_interop.py``; SAELens is not needed here).

A SAELens SAE folder holds ``cfg.json`` and ``sae_weights.safetensors`` with W_enc (d_in, d_sae), W_dec (d_sae,
d_in), b_enc (d_sae,), b_dec (d_in,) and, for JumpReLU, threshold (d_sae,). It encodes
h = (x - b_dec) W_enc + b_enc (``apply_b_dec_to_input``, default true), then ReLU (``standard``), ReLU of the top k
(``topk``; with ``rescale_acts_by_decoder_norm`` h is first multiplied by the decoder row norms) or
ReLU(h) * 1[h > threshold] (``jumprelu``), and decodes z W_dec + b_dec.

Ours encodes z = W_E x + b_E and decodes W_D a + b_D, so the two agree exactly with

    W_E = W_enc^T,  W_D = W_dec^T,  b_D = b_dec,  b_E = b_enc - W_enc^T b_dec   (the input-side b_dec folded in)

and, for a rescaling TopK, latent i's encoder row and bias times ||W_dec_i|| and its decoder column divided by it.

Names an SAELens user looks for: d_in = n_p (= n_r for an SAE), d_sae = n_q, W_enc = W_E^T, W_dec = W_D^T,
b_enc / b_dec as above, l1_coefficient = ``Config.l1`` (method ``relu_dec``: L1 weighted by decoder norms, as
SAELens's standard SAE), l0_coefficient = ``Config.l0``, k = ``Config.k``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..model.config import Config
from ..model.dictionary import Dictionary, with_decoder
from ..model.methods import METHODS
from ..model.audit import reconstructs_its_input
from .files import atomic_folder

SAELENS_VERSION = "6.54.12"
EXPORTABLE = tuple(name for name, m in METHODS.items() if m.saelens)


def export_saelens(d: Dictionary, path, k: int = 0) -> Path:
    """Write model ``k`` of ``d`` as a SAELens SAE folder that ``SAE.load_from_disk`` reads, with the same codes."""
    method = d.cfg.impl
    if not method.saelens or d.cfg.activation:
        raise ValueError(f"method {d.cfg.method!r}{' with activation ' + d.cfg.activation if d.cfg.activation else ''}"
                         f" has no SAELens inference equivalent; exportable: {', '.join(EXPORTABLE)} (SAELens stores "
                         "BatchTopK and Matryoshka SAEs as JumpReLU with a threshold learned in training, which "
                         "ours do not have)")
    if reconstructs_its_input(d) is False:
        raise ValueError(f"SAELens SAEs reconstruct their input; this dictionary (n_p={d.sizes['n_p']}, "
                         f"n_r={d.sizes['n_r']}) was trained on a target other than its input (a transcoder or "
                         "crosscoder), and exporting it as an SAE would mislabel it; this export writes SAE folders only (a "
                         "transcoder export is not implemented)")
    P = with_decoder(d.model(k))
    W_E, W_D = P["W_E"][0].float(), P["W_D"][0].float()
    n_q, n_p = W_E.shape
    b_E = P["b_E"][0].float() if "b_E" in P else torch.zeros(n_q)
    b_D = P["b_D"][0].float() if "b_D" in P else torch.zeros(n_p)
    tensors = {"W_enc": W_E.T.contiguous(), "W_dec": W_D.T.contiguous(), "b_dec": b_D.clone(),
               "b_enc": (b_E + W_E @ b_D).contiguous()}
    extra_cfg, extra_tensors = method.saelens_extra(d.cfg, d.model(k))
    cfg = {"architecture": method.saelens, "d_in": n_p, "d_sae": n_q, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"sae_lens_version": SAELENS_VERSION, "exported_by": "sdl_paper", "seed": d.seeds[k]
                        if k < len(d.seeds) else None}}
    cfg |= extra_cfg
    tensors |= extra_tensors
    path = Path(path)
    if path.is_symlink():
        raise FileExistsError(f"{path} is a symbolic link; choose a new path (a link is never replaced)")
    if path.exists() and (not path.is_dir() or not set(os.listdir(path)) <= {"cfg.json", "sae_weights.safetensors"}):
        raise FileExistsError(f"{path} exists and is not a SAELens SAE folder; choose a new path")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / "sae_weights.safetensors"))
        (tmp / "cfg.json").write_text(json.dumps(cfg, indent=1))
    return atomic_folder(path, write)


def import_saelens(path) -> Dictionary:
    """A SAELens SAE folder (standard, topk or jumprelu) as a K = 1 :class:`Dictionary` with the same codes and
    reconstructions; its theory tools then run on it (the partial-minimum test refuses its biases)."""
    path = Path(path)
    cfg_path, w_path = path / "cfg.json", path / "sae_weights.safetensors"
    for f in (cfg_path, w_path):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing; {path} is not a SAELens SAE folder")
    try:
        cfg = json.loads(cfg_path.read_text())
        W = load_file(str(w_path))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as e:
        raise ValueError(f"{path}: corrupt SAELens SAE ({e})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_path}: not a SAELens configuration (a JSON object is expected)")
    bad = [n for n, t in W.items() if not t.is_floating_point() or not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"{w_path}: tensors {sorted(bad)} are not floating point or hold NaN or infinite values")
    arch = cfg.get("architecture", "standard")
    if arch not in ("standard", "topk", "jumprelu"):
        raise ValueError(f"{path}: SAELens architecture {arch!r} is not supported; allowed: standard, topk, jumprelu")
    if cfg.get("normalize_activations", "none") not in ("none", "expected_average_only_in"):
        raise ValueError(f"{path}: normalize_activations={cfg['normalize_activations']!r} changes inputs at run "
                         "time and cannot be folded into a dictionary; allowed: none")
    need = {"W_enc", "W_dec", "b_enc", "b_dec"} | ({"threshold"} if arch == "jumprelu" else set())
    if missing := need - set(W):
        raise ValueError(f"{path}: tensors {sorted(missing)} missing (found {sorted(W)})")
    W_enc, W_dec, b_enc, b_dec = (W[n].float() for n in ("W_enc", "W_dec", "b_enc", "b_dec"))
    d_in, d_sae = W_enc.shape
    if W_dec.shape != (d_sae, d_in) or b_enc.shape != (d_sae,) or b_dec.shape != (d_in,):
        raise ValueError(f"{path}: inconsistent shapes W_enc {tuple(W_enc.shape)}, W_dec {tuple(W_dec.shape)}, "
                         f"b_enc {tuple(b_enc.shape)}, b_dec {tuple(b_dec.shape)}")
    W_E, W_D, b_D = W_enc.T.clone(), W_dec.T.clone(), b_dec.clone()
    b_E = b_enc - (W_enc.T @ b_dec if cfg.get("apply_b_dec_to_input", True) else 0)
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm", False):
        norms = W_dec.norm(dim=1)
        W_E, b_E, W_D = W_E * norms[:, None], b_E * norms, W_D / norms
    method = {"standard": "relu_dec", "topk": "topk", "jumprelu": "jumprelu"}[arch]
    params = {"W_E": W_E[None], "W_D": W_D[None], "b_E": b_E[None].contiguous(), "b_D": b_D[None]}
    k = cfg.get("k", 100)
    if arch == "topk" and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d_sae):
        raise ValueError(f"{cfg_path}: k={k!r} must be an int in [1, d_sae={d_sae}]")
    ours = Config(method=method, bias=True, unit_decoder=False, **({"k": k} if arch == "topk" else {}))
    if arch == "jumprelu":
        if bool((W["threshold"] < 0).any()):
            raise ValueError(f"{path}: negative JumpReLU thresholds (SAELens keeps them >= 0 in training)")
        params["log_theta"] = W["threshold"].float().log()[None]      # threshold 0 -> -inf -> exp 0: a ReLU
    return Dictionary(params, ours, [], {"imported_from": str(path), "saelens_architecture": arch,
                                         "saelens_version": cfg.get("metadata", {}).get("sae_lens_version")})
