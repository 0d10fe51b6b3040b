"""Files from a hostile or unlucky world: crafted, damaged or mutated dictionaries and checkpoints are refused with
our error before use (never a crash), outputs never delete or replace what is not ours, permissions follow the
umask."""
from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from sdl_paper import Config, Dictionary, load_checkpoint, load_dictionary, save_dictionary, train
from sdl_paper.data import ground_truth

REFUSALS = (ValueError, FileNotFoundError, FileExistsError)


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    cfg = Config.theory(method="jumprelu", bias=True, steps=6, batch_size=16, lr=1e-2)
    state = train(_gt(), cfg, 16, [0, 1], progress=False, checkpoint=str(root / "ck"))
    save_dictionary(Dictionary.from_state(state), root / "d")
    return root


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _rewrite(folder, name, change):
    """Rewrite the tensors of ``folder/name`` after ``change(dict)``; the JSON beside it is untouched."""
    tensors = load_file(str(folder / name))
    change(tensors)
    save_file(tensors, str(folder / name), metadata={"format": "x"})


CHECKPOINT_CHANGES = {
    "adam moments of the wrong shape": lambda t: t.update({"adam_m.W_E": torch.zeros(2, 3, 3)}),
    "adam second moment negative": lambda t: t.update({"adam_v.W_E": -torch.ones_like(t["adam_v.W_E"])}),
    "a parameter with NaN": lambda t: t["params.W_D"].fill_(float("nan")),
    "an integer parameter": lambda t: t.update({"params.b_E": t["params.b_E"].long()}),
    "a missing parameter": lambda t: t.pop("params.log_theta"),
    "an extra parameter": lambda t: t.update({"params.W_x": torch.zeros(2, 16)}),
    "a short generator state": lambda t: t.update({"generator.0": t["generator.0"][:100]}),
    "a firing record of the wrong shape": lambda t: t.update({"last_fired": torch.zeros(2, 3, dtype=torch.long)}),
    "a 2-D encoder": lambda t: t.update({"params.W_E": torch.zeros(16, 8), "adam_m.W_E": torch.zeros(16, 8),
                                         "adam_v.W_E": torch.zeros(16, 8)}),
}


@pytest.mark.parametrize("change", CHECKPOINT_CHANGES, ids=list(CHECKPOINT_CHANGES))
def test_a_crafted_checkpoint_is_refused_naming_the_problem_before_any_use(files, tmp_path, change):
    ck = _copy(files / "ck", tmp_path / "ck")
    _rewrite(ck, "checkpoint.safetensors", CHECKPOINT_CHANGES[change])
    with pytest.raises(ValueError, match=str(ck)):
        load_checkpoint(ck)


META_CHANGES = {
    "config null": lambda m: m.update(config=None),
    "config of another method": lambda m: m["config"].update(method="topk"),
    "no step": lambda m: m.pop("step"),
    "a negative step": lambda m: m.update(step=-3),
    "seeds of another length": lambda m: m.update(seeds=[0]),
    "history not a list": lambda m: m.update(history="x"),
    "generators on a made-up device": lambda m: m.update(generator_device="tpu"),
}


@pytest.mark.parametrize("change", META_CHANGES, ids=list(META_CHANGES))
def test_a_checkpoint_with_crafted_json_is_refused(files, tmp_path, change):
    ck = _copy(files / "ck", tmp_path / "ck")
    meta = json.loads((ck / "state.json").read_text())
    META_CHANGES[change](meta)
    (ck / "state.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError):
        load_checkpoint(ck)


def test_a_dictionary_with_nan_weights_or_wrong_shapes_is_refused(files, tmp_path):
    d = _copy(files / "d", tmp_path / "d")
    _rewrite(d, "dictionary.safetensors", lambda t: t["W_E"].fill_(float("nan")))
    with pytest.raises(ValueError, match="non-finite"):
        load_dictionary(d)
    d2 = _copy(files / "d", tmp_path / "d2")
    _rewrite(d2, "dictionary.safetensors", lambda t: t.update({"log_theta": torch.zeros(2, 15)}))
    with pytest.raises(ValueError, match="log_theta"):
        load_dictionary(d2)


def _load(kind):
    return load_dictionary if kind == "d" else load_checkpoint


@pytest.mark.parametrize("kind", ["d", "ck"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_load_whole_or_are_refused_with_our_error(files, tmp_path_factory, kind, data):
    folder = _copy(files / kind, tmp_path_factory.mktemp("fuzz") / kind)
    name = "dictionary.safetensors" if kind == "d" else "checkpoint.safetensors"
    raw = bytearray((folder / name).read_bytes())
    header = struct.unpack("<Q", raw[:8])[0]
    how = data.draw(st.sampled_from(["truncate", "flip header", "flip data", "json"]))
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip header":
        i = data.draw(st.integers(0, 8 + header - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "flip data":
        i = data.draw(st.integers(8 + header, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    else:
        meta_name = "config.json" if kind == "d" else "state.json"
        text = (folder / meta_name).read_text()
        j = data.draw(st.integers(0, len(text) - 1))
        (folder / meta_name).write_text(text[:j] + data.draw(st.sampled_from(["0", "null", "[", "\"x\"", ""]))
                                        + text[j + 1:])
    (folder / name).write_bytes(bytes(raw))
    try:
        obj = _load(kind)(folder)
    except REFUSALS:
        return
    params = obj.params                                              # a file that loads is whole and finite
    assert all(bool(torch.isfinite(t).all()) for t in params.values())


def test_saving_never_removes_a_sibling_that_is_not_ours(files, tmp_path):
    d = load_dictionary(files / "d")
    user = tmp_path / ".d.old"
    user.mkdir()
    (user / "mine.txt").write_text("keep")
    save_dictionary(d, tmp_path / "d")
    save_dictionary(d, tmp_path / "d")                                # replaces our own folder
    assert (user / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d.old", "d"]


def test_an_output_path_that_is_a_link_is_refused_and_left_alone(files, tmp_path):
    d = load_dictionary(files / "d")
    target = tmp_path / "real"
    save_dictionary(d, target)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(FileExistsError, match="symbolic link"):
        save_dictionary(d, tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and (target / "config.json").is_file()


def test_a_checkpoint_path_holding_other_files_is_refused_before_training(tmp_path):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "notes.txt").write_text("mine")
    calls = []
    with pytest.raises(FileExistsError, match="not a checkpoint folder"):
        train(_gt(), Config.theory(steps=5, batch_size=8), 16, [0], progress=False, checkpoint=str(tmp_path / "ck"),
              callback=lambda *a: calls.append(1))
    assert calls == [] and (tmp_path / "ck" / "notes.txt").read_text() == "mine"


def test_files_are_written_with_the_users_umask(files, tmp_path):
    d = load_dictionary(files / "d")
    old = os.umask(0o022)
    try:
        save_dictionary(d, tmp_path / "d")
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "d" / "config.json").stat().st_mode & 0o777 == 0o644


def test_resume_refuses_a_checkpoint_whose_model_or_data_differ(tmp_path):
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    cfg = Config.theory(method="relu", activation="relu>topk:1", l1=0.0, steps=4, batch_size=16)
    train(x, cfg, 16, [0], progress=False, checkpoint=str(tmp_path / "ck"))
    for other, data, match in [(cfg.replace(activation="relu>topk:2", steps=8), x, "activation"),
                               (cfg.replace(bias=True, steps=8), x, "bias"),
                               (cfg.replace(steps=8), x[:128], "rows=256")]:
        with pytest.raises(ValueError, match=match):
            train(data, other, 16, [0], state=load_checkpoint(tmp_path / "ck"), progress=False)
    state = load_checkpoint(tmp_path / "ck")
    state.config = None
    with pytest.raises(ValueError, match="holds no configuration"):
        train(x, cfg.replace(steps=8), 16, [0], state=state, progress=False)
    assert train(x, cfg.replace(steps=8, lr=3e-3), 16, [0], state=load_checkpoint(tmp_path / "ck"),
                 progress=False).step == 8                        # the learning rate may change


@pytest.mark.parametrize("change, match", [
    (lambda cfg, W: cfg.clear() or cfg.update(x=1) or None, None),
    (lambda cfg, W: W["W_enc"].fill_(float("nan")), "NaN"),
    (lambda cfg, W: cfg.update(k="many"), "k='many'"),
    (lambda cfg, W: cfg.update(k=10 ** 6), "must be an int in"),
])
def test_a_damaged_saelens_folder_is_refused_with_our_error(files, tmp_path, change, match):
    from sdl_paper import export_saelens, import_saelens

    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    d = Dictionary.from_state(train(x, Config.theory(k=2, steps=3, batch_size=16), 16, [0], progress=False))
    export_saelens(d, tmp_path / "sae")
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    W = load_file(str(tmp_path / "sae" / "sae_weights.safetensors"))
    change(cfg, W)
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg if match else [1, 2]))
    save_file(W, str(tmp_path / "sae" / "sae_weights.safetensors"))
    with pytest.raises(ValueError, match=match or "not a SAELens configuration"):
        import_saelens(tmp_path / "sae")
