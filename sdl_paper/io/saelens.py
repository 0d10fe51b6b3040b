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

A transcoder (a dictionary whose target is not its input) is written as one of SAELens's transcoders
(``sae_lens/saes/transcoder.py``): ``transcoder`` (ReLU) or ``jumprelu_transcoder``, with d_out = n_r, W_dec
(d_sae, d_out), b_dec (d_out,) and ``apply_b_dec_to_input`` false (SAELens refuses it for transcoders): h =
x W_enc + b_enc, so b_E = b_enc with nothing folded. SAELens 6.54.12 has no TopK transcoder, and its skip
transcoders add W_skip x to the output, which ours lack: those are refused, never written as an SAE.

Names an SAELens user looks for: d_in = n_p, d_out = n_r (= n_p for an SAE), d_sae = n_q, W_enc = W_E^T,
W_dec = W_D^T, b_enc / b_dec as above, l1_coefficient = ``Config.l1`` (method ``relu_dec``: L1 weighted by decoder
norms, as SAELens's standard SAE), l0_coefficient = ``Config.l0``, k = ``Config.k``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..model.config import Config
from ..model.dictionary import Dictionary, with_decoder
from ..model.methods import METHODS
from ..model.audit import reconstructs_its_input
from .files import atomic_folder

SAELENS_VERSION = "6.54.12"
EXPORTABLE = tuple(name for name, m in METHODS.items() if m.saelens)
# SAELens 6.54.12's transcoder architectures (registered in sae_lens/__init__.py) by the SAE architecture whose
# codes they compute; it has no TopK transcoder, and its skip transcoders' W_skip has no counterpart here
TRANSCODERS = {"standard": "transcoder", "jumprelu": "jumprelu_transcoder"}
TRANSCODER_EXPORTABLE = tuple(name for name in EXPORTABLE if METHODS[name].saelens in TRANSCODERS)
ARCHITECTURES = ("standard", "topk", "jumprelu", *TRANSCODERS.values())
FILES = ("cfg.json", "sae_weights.safetensors")


def export_saelens(d: Dictionary, path, k: int = 0) -> Path:
    """Write model ``k`` of ``d`` as a SAELens folder that ``SAE.load_from_disk`` reads, with the same codes and
    outputs: an SAE, or for a transcoder one of SAELens's transcoder classes (:func:`saelens_architecture`)."""
    arch = saelens_architecture(d)
    tensors, cfg = _saelens_files(d, k, arch)
    path = Path(path)
    if path.is_symlink():
        raise FileExistsError(f"{path} is a symbolic link; choose a new path (a link is never replaced)")
    if path.exists() and (not path.is_dir() or not set(os.listdir(path)) <= set(FILES)):
        raise FileExistsError(f"{path} exists and is not a SAELens SAE folder; choose a new path")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / FILES[1]))
        (tmp / FILES[0]).write_text(json.dumps(cfg, indent=1))
    return atomic_folder(path, write)


def saelens_architecture(d: Dictionary) -> str:
    """The SAELens architecture computing ``d``'s codes and outputs exactly: an SAE's (standard, topk, jumprelu)
    or, for a transcoder (its target is not its input), a transcoder's; refuses a dictionary that has none."""
    method = d.cfg.impl
    if not method.saelens or d.cfg.activation:
        raise ValueError(f"method {d.cfg.method!r}{' with activation ' + d.cfg.activation if d.cfg.activation else ''}"
                         f" has no SAELens inference equivalent; exportable: {', '.join(EXPORTABLE)} (SAELens stores "
                         "BatchTopK and Matryoshka SAEs as JumpReLU with a threshold learned in training, which "
                         "ours do not have)")
    if reconstructs_its_input(d) is not False:
        return method.saelens
    if method.saelens not in TRANSCODERS:
        raise ValueError(f"this dictionary is a transcoder (n_p={d.sizes['n_p']}, n_r={d.sizes['n_r']}, trained on "
                         f"a target other than its input) of method {d.cfg.method!r}; SAELens {SAELENS_VERSION} has "
                         f"no {method.saelens} transcoder, and writing it as an SAE would mislabel it; transcoder "
                         f"methods exportable: {', '.join(TRANSCODER_EXPORTABLE)} (architectures "
                         f"{', '.join(TRANSCODERS.values())})")
    if d.cfg.practice == "standard" and d.cfg.subtract_b_D:
        raise ValueError("practice='standard' with subtract_b_D=True subtracts b_D from the input, which SAELens's "
                         "transcoders never do (they refuse apply_b_dec_to_input); allowed for a transcoder: "
                         "subtract_b_D=False or practice='theory'")
    return TRANSCODERS[method.saelens]


def _saelens_files(d: Dictionary, k: int, arch: str) -> tuple[dict[str, Tensor], dict]:
    """(tensors, cfg.json) of model ``k`` as SAELens architecture ``arch``: W_enc (d_in, d_sae), W_dec (d_sae,
    d_out), b_enc (d_sae,), b_dec (d_out,), and the method's extras (JumpReLU: threshold (d_sae,))."""
    transcoder = arch in TRANSCODERS.values()
    P = with_decoder(d.model(k))
    W_E, W_D = P["W_E"][0].float(), P["W_D"][0].float()
    (n_q, n_p), n_r = W_E.shape, W_D.shape[0]
    b_E = P["b_E"][0].float() if "b_E" in P else torch.zeros(n_q)
    b_D = P["b_D"][0].float() if "b_D" in P else torch.zeros(n_r)
    tensors = {"W_enc": W_E.T.contiguous(), "W_dec": W_D.T.contiguous(), "b_dec": b_D.clone(),
               "b_enc": (b_E.clone() if transcoder else b_E + W_E @ b_D).contiguous()}
    cfg = {"architecture": arch, "d_in": n_p, "d_sae": n_q, **({"d_out": n_r} if transcoder else {}),
           "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": not transcoder,
           "normalize_activations": "none",
           "metadata": {"sae_lens_version": SAELENS_VERSION, "exported_by": "sdl_paper", "seed": d.seeds[k]
                        if k < len(d.seeds) else None}}
    extra_cfg, extra_tensors = d.cfg.impl.saelens_extra(d.cfg, d.model(k))
    return tensors | extra_tensors, cfg | extra_cfg


def _read_folder(path: Path) -> tuple[dict, dict[str, Tensor]]:
    """cfg.json and the tensors of a SAELens folder, refusing a missing or corrupt file, a configuration that is
    not a JSON object, and tensors that are not floating point or not finite."""
    cfg_path, w_path = (path / f for f in FILES)
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
    return cfg, W


def _check_architecture(path: Path, cfg: dict) -> str:
    """``cfg``'s architecture, refused unless a dictionary of ours computes it exactly."""
    arch = cfg.get("architecture", "standard")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{path}: SAELens architecture {arch!r} is not supported; allowed: {', '.join(ARCHITECTURES)}"
                         " (skip transcoders add W_skip x to the output, which our dictionaries lack)")
    if cfg.get("normalize_activations", "none") not in ("none", "expected_average_only_in"):
        raise ValueError(f"{path}: normalize_activations={cfg['normalize_activations']!r} changes inputs at run "
                         "time and cannot be folded into a dictionary; allowed: none")
    if arch in TRANSCODERS.values() and cfg.get("apply_b_dec_to_input", True) is not False:
        raise ValueError(f"{path}: a {arch} needs apply_b_dec_to_input=false (SAELens refuses it for transcoders: "
                         f"b_dec lives in the output space); got {cfg.get('apply_b_dec_to_input', True)!r}")
    return arch


def _check_shapes(path: Path, cfg: dict, W: dict[str, Tensor], arch: str) -> None:
    """Refuse missing tensors and shapes other than W_enc (d_in, d_sae), W_dec (d_sae, d_out), b_enc (d_sae,),
    b_dec (d_out,), threshold (d_sae,) (d_out = d_in for an SAE), and sizes in cfg.json that differ from them."""
    need = {"W_enc", "W_dec", "b_enc", "b_dec"} | ({"threshold"} if "jumprelu" in arch else set())
    if missing := need - set(W):
        raise ValueError(f"{path}: tensors {sorted(missing)} missing (found {sorted(W)})")
    got = {n: tuple(W[n].shape) for n in sorted(need)}
    if len(got["W_enc"]) != 2 or len(got["W_dec"]) != 2:
        raise ValueError(f"{path}: W_enc and W_dec must be 2-D; got shapes {got}")
    (d_in, d_sae), d_out = got["W_enc"], got["W_dec"][1] if arch in TRANSCODERS.values() else got["W_enc"][0]
    want = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_out), "b_enc": (d_sae,), "b_dec": (d_out,),
            "threshold": (d_sae,)}
    if any(got[n] != want[n] for n in need):
        want = {n: want[n] for n in sorted(need)}
        raise ValueError(f"{path}: inconsistent shapes {got}; a {arch} needs {want}")
    declared = {"d_in": d_in, "d_sae": d_sae} | ({"d_out": d_out} if arch in TRANSCODERS.values() else {})
    if wrong := {n: cfg[n] for n, v in declared.items() if n in cfg and cfg[n] != v}:
        raise ValueError(f"{path}: cfg.json declares {wrong}, but the tensors have {declared}")


def import_saelens(path) -> Dictionary:
    """A SAELens folder (SAE: standard, topk, jumprelu; transcoder: transcoder, jumprelu_transcoder) as a K = 1
    :class:`Dictionary` with the same codes and outputs; its theory tools then run on it (the partial-minimum test
    refuses its biases). An imported transcoder is marked as one (its target is not its input)."""
    path = Path(path)
    cfg, W = _read_folder(path)
    arch = _check_architecture(path, cfg)
    _check_shapes(path, cfg, W, arch)
    transcoder = arch in TRANSCODERS.values()
    W_enc, W_dec, b_enc, b_dec = (W[n].float() for n in ("W_enc", "W_dec", "b_enc", "b_dec"))
    d_sae = W_enc.shape[1]
    W_E, W_D, b_D = W_enc.T.clone(), W_dec.T.clone(), b_dec.clone()
    b_E = b_enc - (W_enc.T @ b_dec if not transcoder and cfg.get("apply_b_dec_to_input", True) else 0)
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm", False):
        norms = W_dec.norm(dim=1)
        W_E, b_E, W_D = W_E * norms[:, None], b_E * norms, W_D / norms
    method = {"standard": "relu_dec", "transcoder": "relu_dec", "topk": "topk", "jumprelu": "jumprelu",
              "jumprelu_transcoder": "jumprelu"}[arch]
    params = {"W_E": W_E[None], "W_D": W_D[None], "b_E": b_E[None].contiguous(), "b_D": b_D[None]}
    k = cfg.get("k", 100)
    if arch == "topk" and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d_sae):
        raise ValueError(f"{path / FILES[0]}: k={k!r} must be an int in [1, d_sae={d_sae}]")
    ours = Config.theory(method=method, bias=True, unit_decoder=False, **({"k": k} if arch == "topk" else {}))
    if method == "jumprelu":
        if bool((W["threshold"] < 0).any()):
            raise ValueError(f"{path}: negative JumpReLU thresholds (SAELens keeps them >= 0 in training)")
        params["log_theta"] = W["threshold"].float().log()[None]      # threshold 0 -> -inf -> exp 0: a ReLU
    about = cfg.get("metadata")
    meta = {"imported_from": str(path), "saelens_architecture": arch,
            "saelens_version": about.get("sae_lens_version") if isinstance(about, dict) else None}
    if transcoder:                                 # audit and export then treat it as the transcoder it is
        meta["source"] = {"kind": "SAELens transcoder", "n_p": W_E.shape[1], "n_r": W_D.shape[0],
                          "autoencoder": False}
    return Dictionary(params, ours, [], meta)
