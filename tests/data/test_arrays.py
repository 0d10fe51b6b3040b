import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sdl_paper.model import Config
from sdl_paper.training import train
from sdl_paper.data import ground_truth
from sdl_paper.data.arrays import (ArraySource, GroundTruthSource, IteratorSource, StoredArray, as_source,
                                      open_array)


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def _cfg(**kw):
    return Config.theory(**({"steps": 30, "batch_size": 32, "k": 2, "lr": 1e-2} | kw))


def test_a_tensor_a_npy_file_and_a_safetensors_file_train_to_the_same_numbers(tmp_path):
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "x.npy", x.numpy())
    save_file({"acts": x}, str(tmp_path / "x.safetensors"))
    runs = [train(src, _cfg(), 16, [0, 1], progress=False)
            for src in (x, tmp_path / "x.npy", str(tmp_path / "x.safetensors"))]
    for r in runs[1:]:
        assert all(torch.equal(runs[0].params[k], r.params[k]) for k in r.params)
    assert runs[1].source["files"] == [str(tmp_path / "x.npy")]


def test_a_stored_file_is_read_by_rows_not_whole(tmp_path):
    x = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    src = ArraySource(tmp_path / "x.npy")
    assert isinstance(src.x_p, StoredArray)                        # rows are read on demand, never the file
    assert np.array_equal(src.x_p[np.array([3, 4, 5, 9])], x[[3, 4, 5, 9]])
    x_p, x_r = src.sample([torch.Generator().manual_seed(0)], 5, "cpu")
    assert x_p.shape == (1, 5, 8) and x_r is x_p
    rows = [int(np.argmin(np.abs(x - r.numpy()).sum(1))) for r in x_p[0]]
    assert np.allclose(x[rows], x_p[0].numpy())                    # the batch holds rows of the file


def test_a_transcoder_pair_and_a_crosscoder_list_give_their_widths():
    x, y = torch.randn(50, 8), torch.randn(50, 5)
    pair = as_source(x, targets=y)
    assert (pair.n_p, pair.n_r) == (8, 5)
    p, r = pair.sample([torch.Generator().manual_seed(1)], 4, "cpu")
    assert p.shape == (1, 4, 8) and r.shape == (1, 4, 5)
    cross = as_source([x, y], targets=[x, y])
    assert (cross.n_p, cross.n_r) == (13, 13)
    with pytest.raises(ValueError, match="paired row by row"):
        as_source(x, targets=torch.randn(49, 5))


def test_ground_truth_source_gives_the_engine_its_old_batches():
    gt = _gt()
    gens = GroundTruthSource(gt).generators([3])
    x_p, _ = GroundTruthSource(gt).sample(gens, 16, "cpu")
    g = torch.Generator().manual_seed(3 + 1_000_003)
    assert torch.equal(x_p[0], gt.coefficients.sample(16, g) @ gt.W_p.T)


def test_an_iterator_trains_until_it_ends_and_all_models_share_its_batches():
    batches = [torch.randn(32, 8, generator=torch.Generator().manual_seed(i)) for i in range(7)]
    src = IteratorSource(iter(batches))
    state = train(src, _cfg(steps=100), 16, [0, 1], progress=False)
    assert state.step == 7 and state.history[-1] == {"step": 7, "stopped": "the data source ended"}
    with pytest.raises(ValueError, match="widths changed"):
        train(iter([torch.randn(4, 8), torch.randn(4, 9)]), _cfg(), 16, [0], progress=False)


def test_metrics_need_directions_and_never_use_placeholders():
    x = torch.randn(100, 8)
    with pytest.raises(ValueError, match="no directions"):
        train(x, _cfg(track_every=5), 16, [0], progress=False)
    W = torch.linalg.qr(torch.randn(8, 8))[0][:, :4]
    state = train(as_source(x, directions=W), _cfg(track_every=10), 16, [0], progress=False)
    assert 0 <= state.tracked[-1]["models"][0]["M_IP_dec"] <= 1
    with pytest.raises(ValueError, match="directions must be"):
        as_source(x, directions=torch.randn(7, 4))


@pytest.mark.parametrize("content, match", [(b"not a file at all", "cannot read"), (None, "no such file")])
def test_bad_files_are_refused_by_name(tmp_path, content, match):
    path = tmp_path / "acts.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        open_array(path)


def test_truncated_and_wrong_files_are_refused(tmp_path):
    x = torch.randn(100, 8)
    save_file({"acts": x}, str(tmp_path / "x.safetensors"))
    data = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated"):
        open_array(tmp_path / "cut.safetensors")
    save_file({"a": x, "b": x.clone()}, str(tmp_path / "two.safetensors"))
    with pytest.raises(ValueError, match="one tensor"):
        open_array(tmp_path / "two.safetensors")
    np.save(tmp_path / "v.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        open_array(tmp_path / "v.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read"):
        open_array(tmp_path / "o.npy")
    with pytest.raises(ValueError, match="NaN"):
        as_source(torch.tensor([[float("nan")] * 8]))
    with pytest.raises(TypeError, match="allowed"):
        as_source(3.0)


def test_bfloat16_and_float16_safetensors_read_as_float32(tmp_path):
    x = torch.randn(40, 8)
    for dtype in (torch.bfloat16, torch.float16):
        save_file({"acts": x.to(dtype)}, str(tmp_path / "x.safetensors"))
        rows = open_array(tmp_path / "x.safetensors")[np.array([0, 7, 8])]
        assert rows.dtype == np.float32 and np.array_equal(rows, x.to(dtype).float()[[0, 7, 8]].numpy())


def test_a_npy_file_gives_the_tensor_paths_batches_batch_by_batch(tmp_path):
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(1))      # 500 rows: batches repeat rows
    np.save(tmp_path / "x.npy", x.numpy())
    mem, disk = ArraySource(x), ArraySource(tmp_path / "x.npy")
    g_mem, g_disk = mem.generators([0, 1, 2]), disk.generators([0, 1, 2])
    for _ in range(20):
        (p_mem, _), (p_disk, _) = mem.sample(g_mem, 257, "cpu"), disk.sample(g_disk, 257, "cpu")
        assert torch.equal(p_mem, p_disk)                            # the same rows in the same order
    g = torch.Generator().manual_seed(5)
    idx = torch.randint(0, 500, (300,), generator=g)
    x_p, x_r = disk.pool(300, torch.Generator().manual_seed(5))
    assert torch.equal(x_p, x[idx]) and x_r is x_p                   # the drawn order, not the sorted one
    rows = np.array([499, 3, 3, 0, 250, 4])                          # unsorted, repeated, both ends
    assert np.array_equal(disk.x_p[rows], x.numpy()[rows])
    assert np.array_equal(disk.x_p[10:20], x.numpy()[10:20]) and np.array_equal(disk.x_p[:], x.numpy())
    assert disk.x_p[np.array([], dtype=np.int64)].shape == (0, 16)
    with pytest.raises(IndexError, match="must lie in"):
        disk.x_p[np.array([500])]


def test_reading_batches_holds_the_batch_not_the_file_in_the_processs_own_memory(tmp_path):
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs Linux /proc")

    def rss_anon_mib():
        line = next(l for l in status.read_text().splitlines() if l.startswith("RssAnon:"))
        return int(line.split()[1]) / 1024

    path = tmp_path / "x.npy"
    np.save(path, np.ones((65536, 256), dtype=np.float32))          # 64 MiB
    src, rng = ArraySource(path), np.random.default_rng(0)
    src.x_p[np.sort(rng.integers(0, 65536, 1024))]
    before = rss_anon_mib()
    for _ in range(100):                                             # rows from all over the file, 100 MiB in all
        batch = src.x_p[np.sort(rng.integers(0, 65536, 1024))]
    assert batch.shape == (1024, 256) and rss_anon_mib() - before < 16   # a 1 MiB batch, not a copy of the file


def test_malformed_npy_files_are_refused_clearly(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage that is no header")
    (tmp_path / "text.npy").write_bytes(b"1,2,3\n4,5,6\n")
    for name in ("junk.npy", "text.npy"):
        with pytest.raises(ValueError, match="cannot read activations"):
            open_array(tmp_path / name)
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((6, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="Fortran"):
        open_array(tmp_path / "f.npy")
    np.save(tmp_path / "s.npy", np.array([["ab", "cd"]]))
    with pytest.raises(ValueError, match="not numeric"):
        open_array(tmp_path / "s.npy")
    np.save(tmp_path / "short.npy", np.ones((100, 8), dtype=np.float32))
    data = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-4])
    with pytest.raises(ValueError, match="truncated"):
        open_array(tmp_path / "short.npy")
    (tmp_path / "x.txt").write_bytes(data)
    with pytest.raises(ValueError, match="unknown file type"):
        open_array(tmp_path / "x.txt")


def test_a_file_cut_after_opening_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((1000, 8), dtype=np.float32))
    arr = open_array(path)
    assert arr[np.array([999])].shape == (1, 8)
    os.truncate(path, path.stat().st_size - 1000)
    with pytest.raises(ValueError, match="truncated"):
        arr[np.array([0, 999])]
