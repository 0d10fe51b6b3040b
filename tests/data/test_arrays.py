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
    return Config(**({"steps": 30, "batch_size": 32, "k": 2, "lr": 1e-2} | kw))


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
