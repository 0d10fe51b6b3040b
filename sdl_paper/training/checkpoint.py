"""Training checkpoints: ``DIR/checkpoint.safetensors`` (parameters, Adam moments, firing steps, data-generator
states) and ``DIR/state.json`` (step, config, seeds, history, tracked metrics, resampling log), written atomically
by :func:`sdl_paper.io.files.write_folder`; reading runs no code from the files."""
from __future__ import annotations

from pathlib import Path

import torch

from ..io.files import read_folder, write_folder
from ..model.dictionary import sizes
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
    """The training state saved by :func:`save_checkpoint` (pass it as ``train(..., state=...)``)."""
    tensors, meta = read_folder(path, "checkpoint")
    try:
        def group(prefix):   # W_D is trained column-major (see init_state): same layout, same numbers
            out = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            return {k: v.transpose(1, 2).contiguous().transpose(1, 2) if k == "W_D" else v for k, v in out.items()}
        gens = []
        for i in range(meta["generators"]):
            g = torch.Generator(device=meta.get("generator_device", "cpu"))
            g.set_state(tensors[f"generator.{i}"])
            gens.append(g)
        state = State(group("params."), group("adam_m."), group("adam_v."), meta["step"], tensors["last_fired"],
                      meta["history"], gens, meta["tracked"], meta["resampled"], meta["config"], meta["seeds"],
                      meta["source"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"{path}: incomplete checkpoint ({e!r})") from None
    if set(state.params) != set(state.adam_m) or len(state.seeds) != sizes(state.params)[0]:
        raise ValueError(f"{path}: inconsistent checkpoint (parameters {sorted(state.params)}, Adam moments "
                         f"{sorted(state.adam_m)}, seeds {state.seeds})")
    return state
