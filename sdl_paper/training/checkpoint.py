"""Training checkpoints: ``DIR/checkpoint.safetensors`` (parameters, Adam moments, firing steps, data-generator
states) and ``DIR/state.json`` (step, config, seeds, history, tracked metrics, resampling log), written atomically
by :func:`sdl_paper.io.files.write_folder`; reading runs no code from the files."""
from __future__ import annotations

from pathlib import Path

import torch

from ..io.files import read_folder, write_folder
from ..model.config import Config
from ..model.dictionary import check_params
from .state import State


def save_checkpoint(state: State, path) -> Path:
    """Write the whole training state to folder ``path``: :func:`load_checkpoint` resumes it exactly."""
    tensors = {f"params.{k}": v for k, v in state.params.items()}
    tensors |= {f"adam_m.{k}": v for k, v in state.adam_m.items()} | {f"adam_v.{k}": v for k, v in
                                                                       state.adam_v.items()}
    tensors["last_fired"] = state.last_fired
    tensors |= {f"generator.{i}": g.get_state() for i, g in enumerate(state.generators)}
    meta = {"step": state.step, "config": state.config, "seeds": state.seeds, "source": state.source,
            "history": state.history, "tracked": state.tracked, "resampled": state.resampled,
            "generator_device": str(state.generators[0].device) if state.generators else "cpu",
            "generators": len(state.generators)}
    return write_folder(path, "checkpoint", tensors, meta)


def load_checkpoint(path) -> State:
    """The training state saved by :func:`save_checkpoint` (pass it as ``train(..., state=...)``).

    Every tensor is checked against what the checkpoint's own configuration implies before it is used: the
    parameters (names, shapes, dtypes, finite values), Adam's moments (the parameters' shapes and dtypes, finite,
    second moments >= 0), the firing record (K, n_q) and the generator states; a crafted or damaged file is
    refused with a message naming the tensor, never used.
    """
    tensors, meta = read_folder(path, "checkpoint")
    where = str(path)
    try:
        cfg = Config.from_dict(meta["config"])
        params, adam_m, adam_v = (_group(tensors, p) for p in ("params.", "adam_m.", "adam_v."))
        K, n_p, n_q, n_r = check_params(params, cfg, where)
        _check_moments(params, adam_m, adam_v, where)
        gens = _generators(tensors, meta, K, where)
        last = tensors["last_fired"]
        step, seeds = meta["step"], meta["seeds"]
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{where}: incomplete checkpoint ({e!r})") from None
    if tuple(last.shape) != (K, n_q) or last.dtype != torch.long:
        raise ValueError(f"{where}: last_fired must be int64 of shape {(K, n_q)}; got {last.dtype} "
                         f"{tuple(last.shape)}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or int(last.max()) >= max(step, 0) + 1:
        raise ValueError(f"{where}: step {step!r} must be an int >= 0 above every recorded firing step")
    if not isinstance(seeds, list) or len(seeds) != K or not all(isinstance(x, int) and not isinstance(x, bool)
                                                                 for x in seeds):
        raise ValueError(f"{where}: seeds {seeds!r} must be a list of {K} ints, one per model")
    lists = {name: meta.get(name) for name in ("history", "tracked", "resampled")}
    if not all(isinstance(v, list) for v in lists.values()) or not isinstance(meta.get("source"), (dict, type(None))):
        raise ValueError(f"{where}: history, tracked and resampled must be lists and source a mapping")
    return State(params, adam_m, adam_v, step, last, lists["history"], gens, lists["tracked"], lists["resampled"],
                 meta["config"], seeds, meta.get("source"))


def _group(tensors: dict, prefix: str) -> dict:
    """The tensors named ``prefix + name``; W_D is trained column-major (see init_state): same numbers."""
    out = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return {k: v.transpose(1, 2).contiguous().transpose(1, 2) if k == "W_D" and v.ndim == 3 else v
            for k, v in out.items()}


def _check_moments(params: dict, adam_m: dict, adam_v: dict, where: str) -> None:
    for name, moments in (("adam_m", adam_m), ("adam_v", adam_v)):
        if set(moments) != set(params):
            raise ValueError(f"{where}: {name} holds {sorted(moments)}; the parameters are {sorted(params)}")
        for k, t in moments.items():
            if t.shape != params[k].shape or t.dtype != params[k].dtype:
                raise ValueError(f"{where}: {name}.{k} is {t.dtype} {tuple(t.shape)}; its parameter is "
                                 f"{params[k].dtype} {tuple(params[k].shape)}")
            if not bool(torch.isfinite(t).all()) or (name == "adam_v" and bool((t < 0).any())):
                raise ValueError(f"{where}: {name}.{k} holds non-finite{' or negative' * (name == 'adam_v')} "
                                 "values")


def _generators(tensors: dict, meta: dict, K: int, where: str) -> list[torch.Generator]:
    """The K data generators, each state checked (uint8, the length of a fresh generator's on its device)."""
    device = meta.get("generator_device", "cpu")
    if meta.get("generators") != K or device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"{where}: {meta.get('generators')!r} generators on {device!r}; need {K} on cpu or cuda")
    length = torch.Generator().get_state().numel() if device == "cpu" else 16
    gens = []
    for i in range(K):
        t = tensors[f"generator.{i}"]
        if t.dtype != torch.uint8 or tuple(t.shape) != (length,):
            raise ValueError(f"{where}: generator.{i} must be a uint8 state of length {length}; got {t.dtype} "
                             f"{tuple(t.shape)}")
        g = torch.Generator(device=device)
        try:
            g.set_state(t)
        except RuntimeError as e:
            raise ValueError(f"{where}: generator.{i} is not a valid generator state ({e})") from None
        gens.append(g)
    return gens
