"""Self-describing, safe files: a folder with tensors in ``.safetensors`` and everything else in JSON.

- a dictionary (:func:`save_dictionary`): ``DIR/dictionary.safetensors`` (W_E (K, n_q, n_p), W_D (K, n_r, n_q),
  optional b_E, b_D, log_theta) and ``DIR/config.json`` (format, sizes, the :class:`Config`, the activation spec,
  seeds, step, data source);
- a training checkpoint (:mod:`sdl_paper.training.checkpoint`, written with :func:`write_folder`).

Writes are atomic (a temporary folder renamed into place), so a crash never leaves half a file; an existing folder
is replaced only if it holds a file of the same kind. Reads run no code from the file: a missing, corrupt or
truncated file raises an error naming it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..model.config import Config
from ..model.dictionary import Dictionary, activation_spec, check_params

FORMAT_VERSION = 1
KINDS = {"dictionary": ("dictionary.safetensors", "config.json"), "checkpoint": ("checkpoint.safetensors",
                                                                                "state.json")}


def _jsonable(x):
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_folder(path, kind: str, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Atomically write folder ``path`` of ``kind`` (one of KINDS): tensors in safetensors, ``meta`` in JSON;
    refuses to replace a folder holding anything else."""
    path = Path(path)
    names = KINDS[kind]
    check_output_folder(path, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"cannot write into {path.parent}")

    def write(tmp: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / names[0]),
                  metadata={"format": f"sdl_paper.{kind}", "version": str(FORMAT_VERSION)})
        (tmp / names[1]).write_text(json.dumps(_jsonable(meta | {"format": f"sdl_paper.{kind}",
                                                                  "version": FORMAT_VERSION}), indent=1))
    return atomic_folder(path, write)


def check_output_folder(path, kind: str) -> None:
    """Refuse, before any work, an output ``path`` that a :func:`write_folder` of ``kind`` would not replace: a
    symbolic link, a file, or a folder holding anything but a complete or partial ``kind`` folder."""
    path, names = Path(path), KINDS[kind]
    if path.is_symlink():
        raise FileExistsError(f"{path} is a symbolic link; choose a new path (a link is never replaced)")
    if path.exists():
        if not path.is_dir() or not set(os.listdir(path)) <= set(names) or not os.listdir(path):
            raise FileExistsError(f"{path} exists and is not a {kind} folder; choose a new path")


def _disk_error(e: SafetensorError, path: Path) -> OSError | None:
    """safetensors reports a failed write (a full disk, a size limit) as ``... I/O error: TEXT (os error N)``:
    the OSError Python's own writes raise, naming ``path``; None for any other error."""
    match = re.search(r"I/O error: (.*) \(os error (\d+)\)", str(e))
    return None if match is None else OSError(int(match[2]), f"cannot write {path}: {match[1]}")


def atomic_folder(path: Path, write) -> Path:
    """Call ``write(tmp)`` on a fresh temporary folder beside ``path``, then put it in place of ``path`` (an old
    folder is moved aside first and deleted last), so a crash never leaves half a folder. A failed write raises
    OSError (also where safetensors wrote)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    old = None
    try:
        try:
            write(tmp)
        except SafetensorError as e:
            if (err := _disk_error(e, path)) is None:
                raise
            raise err from e
        with_umask(tmp)
        if path.exists():      # moved aside to a fresh name of ours, so nothing of the user's is ever removed
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)                     # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def with_umask(path: Path) -> None:
    """Give ``path`` (a folder or file we created) and everything under it the permissions the user's umask
    grants (tempfile makes them private: 0700 / 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def read_folder(path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    tensors_name, meta_name = KINDS[kind]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such {kind} folder (expected {tensors_name} and {meta_name} in it)")
    for name in (tensors_name, meta_name):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name}: missing; {path} is not a complete {kind}")
    try:
        meta = json.loads((path / meta_name).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / meta_name}: corrupt JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != f"sdl_paper.{kind}":
        raise ValueError(f"{path / meta_name}: not an sdl_paper {kind} (format {meta.get('format')!r})"
                         if isinstance(meta, dict) else f"{path / meta_name}: not an sdl_paper {kind}")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['version']} is newer than this package's {FORMAT_VERSION}")
    try:
        tensors = load_file(str(path / tensors_name))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path / tensors_name}: corrupt or truncated safetensors file ({e})") from None
    return tensors, meta


def save_dictionary(d: Dictionary, path) -> Path:
    """Write ``d`` to folder ``path`` (see the module docstring); returns the path."""
    meta = {"sizes": d.sizes, "config": d.cfg.to_dict(), "activation": activation_spec(d.cfg), "seeds": d.seeds,
            **d.meta}
    return write_folder(path, "dictionary", d.params, meta)


def load_dictionary(path) -> Dictionary:
    """The dictionary saved by :func:`save_dictionary`, checked against its own config."""
    tensors, meta = read_folder(path, "dictionary")
    try:
        cfg = Config.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: inconsistent dictionary ({e})") from None
    K, n_p, n_q, n_r = check_params(tensors, cfg, str(path), aux=False)   # names, shapes, dtypes, finite values
    if meta.get("sizes") != {"K": K, "n_p": n_p, "n_q": n_q, "n_r": n_r}:
        raise ValueError(f"{path}: tensors of sizes {(K, n_p, n_q, n_r)} do not match its config (sizes "
                         f"{meta.get('sizes')})")
    seeds = meta.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise ValueError(f"{path}: seeds {seeds!r} must be a list of ints")
    rest = {k: v for k, v in meta.items() if k not in ("sizes", "config", "activation", "seeds", "format",
                                                        "version")}
    return Dictionary(tensors, cfg, seeds, rest)
