"""Data sources for the training engine: ground truth, tensors, iterators of batches, activations on disk.

A source gives the engine batches of K models, x_p (K, B, n_p) and x_r (K, B, n_r): the encoder's input and the
decoder's target (the same for an SAE; an MLP's input and output for a transcoder; the concatenation of m layers
for a crosscoder). Optional ``directions`` (W_p (n_p, n), W_r (n_r, n): known feature directions, anchors or class
means) enable the ground-truth metrics; without them the engine refuses to compute them rather than guess.

Kinds (build any of them with :func:`as_source`):

- :class:`GroundTruthSource`: codes drawn fresh from a :class:`~sdl_paper.data.ground_truth.GroundTruth`.
- :class:`ArraySource`: rows of a tensor, or of a ``.npy`` / ``.safetensors`` file read by rows through a memory map
  (:class:`StoredArray`: only the rows of a batch are copied, in sorted order; the process's own memory is set by
  the batch, not the file, whose pages are the kernel's page cache). Each model draws its rows i.i.d. uniformly with
  its own seeded generator, so a run is reproducible and resumable.
- :class:`IteratorSource`: batches (B, n_p) or pairs ((B, n_p), (B, n_r)) from any iterable; every model sees the
  same batches, training stops when the iterable ends, and a resumed run cannot replay it.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DATA_SEED_OFFSET = 1_000_003  # model k's data generator is seeded with seeds[k] + this (its init uses seeds[k])
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bf16"}


class Source:
    """Base class: sizes, optional directions and a batch sampler. Subclasses define :meth:`rows`."""

    n_p: int
    n_r: int
    shared_batches = False           # True: every model gets the same batch (iterators)
    autoencoder: bool | None = None  # True: the target is the input (an SAE); False: it is not; None: unknown
    directions: tuple[Tensor, Tensor] | None = None

    @property
    def W_p(self) -> Tensor:
        """(n_p, n) known input-side directions; refuses when none were supplied."""
        return self._directions()[0]

    @property
    def W_r(self) -> Tensor:
        """(n_r, n) known target-side directions; refuses when none were supplied."""
        return self._directions()[1]

    def _directions(self) -> tuple[Tensor, Tensor]:
        if self.directions is None:
            raise ValueError(f"{self.describe()['kind']} source has no directions: pass directions=(W_p, W_r) "
                             "(ground truth, anchors or class means) to compute ground-truth metrics")
        return self.directions

    def generators(self, seeds: list[int]) -> list[torch.Generator]:
        """One data generator per model, seeded from that model's seed."""
        return [torch.Generator().manual_seed(s + DATA_SEED_OFFSET) for s in seeds]

    def sample(self, generators: list[torch.Generator], batch: int, device) -> tuple[Tensor, Tensor]:
        """(x_p, x_r) of shapes (K, B, n_p), (K, B, n_r): model k's batch from generators[k]."""
        pairs = [self.rows(batch, g) for g in generators]
        return (torch.stack([p for p, _ in pairs]).to(device), torch.stack([r for _, r in pairs]).to(device))

    def pool(self, n: int, generator: torch.Generator, device="cpu") -> tuple[Tensor, Tensor]:
        """n samples (x_p (n, n_p), x_r (n, n_r)) for resampling and evaluation."""
        x_p, x_r = self.rows(n, generator)
        return x_p.to(device), x_r.to(device)

    def rows(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def describe(self) -> dict:
        """A JSON-able description stored with checkpoints."""
        return {"kind": type(self).__name__, "n_p": self.n_p, "n_r": self.n_r, "autoencoder": self.autoencoder}


class GroundTruthSource(Source):
    """Fresh codes x ~ the ground truth's law each step; x_p = W_p x, x_r = W_r x."""

    def __init__(self, gt):
        self.gt, self.n_p, self.n_r = gt, gt.n_p, gt.n_r
        self.directions = (gt.W_p, gt.W_r)
        self.autoencoder = gt.W_p.shape == gt.W_r.shape and bool(torch.equal(gt.W_p, gt.W_r))

    def rows(self, n, generator):
        x = self.gt.coefficients.sample(n, generator, dtype=self.gt.W_p.dtype)
        return x @ self.gt.W_p.T.to(x.device), x @ self.gt.W_r.T.to(x.device)

    def sample(self, generators, batch, device):
        xs = torch.stack([self.gt.coefficients.sample(batch, g, dtype=self.gt.W_p.dtype) for g in generators])
        xs = xs.to(device)
        x_p = xs @ self.gt.W_p.T.to(device)
        return x_p, (x_p if self.autoencoder else xs @ self.gt.W_r.T.to(device))   # an SAE: the same tensor


def check_directions(directions, n_p: int, n_r: int):
    """(W_p (n_p, n), W_r (n_r, n)) as float32 from a pair or one matrix for both; None stays None."""
    if directions is None:
        return None
    if isinstance(directions, Tensor):
        directions = (directions, directions)
    W_p, W_r = (torch.as_tensor(d, dtype=torch.float32) for d in directions)
    if W_p.ndim != 2 or W_p.shape[0] != n_p or W_r.ndim != 2 or W_r.shape[0] != n_r or W_p.shape[1] != W_r.shape[1]:
        raise ValueError(f"directions must be (W_p (n_p={n_p}, n), W_r (n_r={n_r}, n)) with one column per "
                         f"direction; got {tuple(W_p.shape)} and {tuple(W_r.shape)}")
    return W_p, W_r


class StoredArray:
    """A 2-D array in a file, read by rows through a read-only memory map of the file.

    A batch's rows (sorted indices, so the pages are touched in file order) are gathered from the map in one numpy
    call and returned as a copy, never a view. The process's own (anonymous) memory holds only those copies; the
    file's pages are the kernel's page cache, which maps them into this process as they are first touched: they
    count in its RssFile (up to the file's size when rows are drawn from all of it), are clean and shared, and the
    kernel reclaims them under memory pressure. Earlier rows were read with ``os.pread`` (nothing of the file
    counted in the resident set, but a system call per row: about 5 ms per batch of 1024 rows, against 0.1-0.3 ms
    now; benchmarks/NPY.md, benchmarks/MEMMAP.md).
    """

    def __init__(self, path: Path, offset: int, dtype, shape: tuple[int, int]):
        self.path, self.offset, self.shape = path, offset, shape
        self.bf16 = dtype == "bf16"
        self.dtype = np.dtype(np.uint16 if self.bf16 else dtype)
        self.row_bytes = self.dtype.itemsize * shape[1]
        self.end = offset + self.row_bytes * shape[0]          # bytes the rows need; the file was checked to hold them
        self.fd = os.open(path, os.O_RDONLY)
        self._map = mmap.mmap(self.fd, self.end, access=mmap.ACCESS_READ)
        self._rows = np.frombuffer(self._map, dtype=self.dtype, count=shape[0] * shape[1],
                                   offset=offset).reshape(shape)

    def __del__(self):
        self._rows = None                                       # the view must go before the map can close
        if getattr(self, "_map", None) is not None:
            self._map.close()
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)

    def __getitem__(self, idx) -> np.ndarray:
        """Rows ``idx`` (an int array, best sorted; or a slice) as a float32 (n, width) copy."""
        idx = np.arange(*idx.indices(self.shape[0])) if isinstance(idx, slice) else np.asarray(idx, dtype=np.intp)
        if idx.ndim != 1:
            raise IndexError(f"row indices must be 1-D; got shape {idx.shape}")
        if len(idx) and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"row indices must lie in [0, {self.shape[0]}); got {idx.min()}..{idx.max()}")
        if os.fstat(self.fd).st_size < self.end:                # a file cut after opening: an error, not a SIGBUS
            raise ValueError(f"{self.path}: file is truncated")
        out = np.take(self._rows, idx, axis=0)                  # a copy: the gather reads through the map
        if self.bf16:
            return torch.from_numpy(out).view(torch.bfloat16).float().numpy()
        return out.astype(np.float32, copy=False)


def open_array(path: Path) -> StoredArray:
    """The single 2-D array of a ``.npy`` (C order, numeric) or ``.safetensors`` file, opened for row reads."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size_on_disk = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            if path.suffix == ".npy":
                version = np.lib.format.read_magic(f)
                read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in read:
                    raise ValueError(f".npy format version {version} not supported; allowed: 1.0, 2.0")
                shape, fortran, dtype = read[version](f)
                if dtype.hasobject or dtype.kind not in "fiu":
                    raise ValueError(f"dtype {dtype} is not numeric")
                if fortran and len(shape) == 2 and shape[1] > 1:
                    raise ValueError("Fortran-ordered array; save it C-ordered (np.ascontiguousarray)")
                offset, itemsize = f.tell(), dtype.itemsize
            elif path.suffix == ".safetensors":
                (size,) = struct.unpack("<Q", f.read(8))
                if size > size_on_disk - 8:
                    raise ValueError("header longer than the file")
                header = json.loads(f.read(size))
                header.pop("__metadata__", None)
                if len(header) != 1:
                    raise ValueError(f"expected one tensor, found {sorted(header)}; store one array per file")
                (info,) = header.values()
                dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
                if dtype is None:
                    raise ValueError(f"dtype {info['dtype']} not supported; allowed: {', '.join(_SAFETENSORS_DTYPES)}")
                start, end = info["data_offsets"]
                shape, offset = tuple(info["shape"]), 8 + size + start
                itemsize = 2 if dtype == "bf16" else np.dtype(dtype).itemsize
                if end - start != itemsize * int(np.prod(shape)):
                    raise ValueError("its header does not match its data")
            else:
                raise ValueError(f"unknown file type {path.suffix!r}; allowed: .npy, .safetensors")
    except (ValueError, OSError, KeyError, TypeError, json.JSONDecodeError, struct.error) as e:
        raise ValueError(f"{path}: cannot read activations ({e})") from None
    if len(shape) != 2 or shape[0] < 1:
        raise ValueError(f"{path}: activations must be a 2-D array (samples, width); got shape {shape}")
    if offset + itemsize * shape[0] * shape[1] > size_on_disk:
        raise ValueError(f"{path}: cannot read activations (file is truncated: {size_on_disk} bytes)")
    return StoredArray(path, offset, dtype, shape)


class ArraySource(Source):
    """Rows of stored activations: a tensor (N, n_p) or a ``.npy`` / ``.safetensors`` file, read by rows.

    Args:
        inputs: tensor, array or path of x_p (N, n_p).
        targets: the same for x_r (N, n_r) (a transcoder's MLP outputs); default: the inputs (an SAE).
        directions: optional (W_p (n_p, n), W_r (n_r, n)), or one (n_p, n) matrix for both.
    """

    def __init__(self, inputs, targets=None, directions=None):
        self.names = [str(inputs) if isinstance(inputs, (str, Path)) else "tensor"]
        self.x_p = self._open(inputs)
        self.x_r = self.x_p if targets is None else self._open(targets)
        if targets is not None:
            self.names.append(str(targets) if isinstance(targets, (str, Path)) else "tensor")
        if self.x_r.shape[0] != self.x_p.shape[0]:
            raise ValueError(f"inputs have {self.x_p.shape[0]} rows but targets {self.x_r.shape[0]}; "
                             "they must be paired row by row")
        self.N, self.n_p, self.n_r = self.x_p.shape[0], self.x_p.shape[1], self.x_r.shape[1]
        self.autoencoder = targets is None
        self.directions = check_directions(directions, self.n_p, self.n_r)

    @staticmethod
    def _open(x):
        if isinstance(x, (str, Path)):
            return open_array(Path(x))
        t = torch.as_tensor(x)
        if t.ndim != 2 or not t.is_floating_point() or 0 in t.shape:
            raise ValueError(f"activations must be a 2-D float tensor (samples, width), non-empty; got {t.dtype} "
                             f"of shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError("activations contain NaN or infinite values")
        return t.detach().float().cpu()

    def rows(self, n, generator):
        idx = torch.randint(0, self.N, (n,), generator=generator, device=generator.device).cpu()
        return self._take(self.x_p, idx), (self._take(self.x_r, idx) if self.x_r is not self.x_p else None)

    @staticmethod
    def _take(arr, idx: Tensor) -> Tensor:
        if isinstance(arr, Tensor):
            return arr.index_select(0, idx)                              # faster than arr[idx] on the CPU
        i = idx.numpy()
        order = torch.from_numpy(np.argsort(i, kind="stable"))         # sorted reads are sequential on disk
        rows = torch.from_numpy(arr[i[order.numpy()]])
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order))                          # the batch back in the drawn order
        return rows.index_select(0, back).float()

    def sample(self, generators, batch, device):
        pairs = [self.rows(batch, g) for g in generators]
        x_p = torch.stack([p for p, _ in pairs]).to(device)
        x_r = x_p if pairs[0][1] is None else torch.stack([r for _, r in pairs]).to(device)
        return x_p, x_r

    def pool(self, n, generator, device="cpu"):
        x_p, x_r = self.rows(n, generator)
        return x_p.to(device), (x_p if x_r is None else x_r).to(device)

    def describe(self):
        return super().describe() | {"rows": self.N, "files": self.names}


class IteratorSource(Source):
    """Batches from an iterable: each item is x (B, n_p) or a pair (x_p (B, n_p), x_r (B, n_r)).

    The first batch fixes the sizes. Every model trains on the same batches; :meth:`sample` raises
    ``StopIteration`` when the iterable ends (the engine then stops and records the step).
    """

    shared_batches = True

    def __init__(self, batches: Iterable, directions=None):
        self._it: Iterator = iter(batches)
        self._first = self._next()
        self.n_p, self.n_r = self._first[0].shape[1], self._first[1].shape[1]
        self.directions = check_directions(directions, self.n_p, self.n_r)

    def _next(self):
        item = next(self._it)
        x_p, x_r = item if isinstance(item, (tuple, list)) else (item, item)
        x_p, x_r = torch.as_tensor(x_p).float(), torch.as_tensor(x_r).float()
        if x_p.ndim != 2 or x_r.ndim != 2 or x_p.shape[0] != x_r.shape[0]:
            raise ValueError(f"each batch must be (B, n_p) or a pair ((B, n_p), (B, n_r)); got shapes "
                             f"{tuple(x_p.shape)}, {tuple(x_r.shape)}")
        if hasattr(self, "n_p") and (x_p.shape[1], x_r.shape[1]) != (self.n_p, self.n_r):
            raise ValueError(f"batch widths changed from ({self.n_p}, {self.n_r}) to ({x_p.shape[1]}, "
                             f"{x_r.shape[1]})")
        return x_p, x_r

    def rows(self, n, generator):
        x_p, x_r = self._first if self._first is not None else self._next()
        self._first = None
        return x_p, x_r

    def sample(self, generators, batch, device):
        x_p, x_r = self.rows(batch, None)
        K = len(generators)
        return x_p.to(device).expand(K, -1, -1), x_r.to(device).expand(K, -1, -1)


def as_source(data, targets=None, directions=None) -> Source:
    """A :class:`Source` from a GroundTruth, a Source, a tensor or array, a file path, a list of per-layer
    sources (a crosscoder: layers concatenated along the width) or an iterable of batches."""
    from .ground_truth import GroundTruth

    if isinstance(data, Source):
        if targets is not None or directions is not None:
            raise ValueError("targets and directions belong to the source you built; pass them to its constructor")
        return data
    if isinstance(data, GroundTruth):
        if targets is not None or directions is not None:
            raise ValueError("a GroundTruth carries its own targets and directions")
        return GroundTruthSource(data)
    if isinstance(data, (Tensor, np.ndarray, str, Path)):
        return ArraySource(data, targets, directions)
    if isinstance(data, list) and data and all(isinstance(d, (Tensor, np.ndarray)) for d in data):
        x = torch.cat([torch.as_tensor(d) for d in data], dim=1)   # crosscoder: m layers side by side
        y = None if targets is None else torch.cat([torch.as_tensor(d) for d in targets], dim=1)
        return ArraySource(x, y, directions)
    if isinstance(data, Iterable):
        if targets is not None:
            raise ValueError("an iterable yields (x_p, x_r) pairs itself; do not pass targets")
        return IteratorSource(data, directions)
    raise TypeError(f"cannot train on {type(data).__name__}; allowed: GroundTruth, Source, tensor, numpy array, "
                    ".npy or .safetensors path, list of per-layer tensors (crosscoder), iterable of batches")
