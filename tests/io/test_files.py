import json

import pytest
import torch

from sdl_paper import Config, Dictionary, load_checkpoint, load_dictionary, save_checkpoint, save_dictionary, train
from sdl_paper.data import ground_truth
from sdl_paper.model.methods import METHODS


def _gt():
    return ground_truth.make_world(8, 12, 0.9, 0.4, n_layers=1, seed=0).view([0], [0])


def _cfg(**kw):
    k = {"k": 2} if METHODS[kw.get("method", "topk")].uses_k else {}     # k is refused where it has no effect
    return Config.theory(**({"steps": 20, "batch_size": 32, "lr": 1e-2} | k | kw))


@pytest.mark.parametrize("cfg", [_cfg(), _cfg(method="jumprelu", bias=True), _cfg(method="relu", tied=True),
                                 _cfg(method="relu", activation="relu>topk:1", l1=0.0)])
def test_a_dictionary_round_trips_with_its_activation_and_gives_the_same_codes(tmp_path, cfg):
    gt = _gt()
    d = Dictionary.from_state(train(gt, cfg, 16, [0, 1], progress=False))
    save_dictionary(d, tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["config.json", "dictionary.safetensors"]
    meta = json.loads((tmp_path / "d" / "config.json").read_text())
    assert meta["config"]["method"] == cfg.method and meta["sizes"] == {"K": 2, "n_p": 8, "n_q": 16, "n_r": 8}
    back = load_dictionary(tmp_path / "d")
    assert back.cfg == cfg and back.seeds == [0, 1]
    x = gt.sample(64, torch.Generator().manual_seed(5))[1]
    for k in (0, 1):
        assert torch.equal(back.encode(x, k), d.encode(x, k))
        assert torch.allclose(back.to_sdl(k).encode(x), d.encode(x, k), atol=1e-6)   # the theory's SDL agrees


def test_a_topk_file_never_loads_as_relu(tmp_path):
    d = Dictionary.from_state(train(_gt(), _cfg(k=1), 16, [0], progress=False))
    save_dictionary(d, tmp_path / "d")
    back = load_dictionary(tmp_path / "d")
    x = torch.randn(32, 8)
    assert back.cfg.method == "topk" and ((back.encode(x) != 0).sum(1) <= 1).all()


def test_resume_refuses_every_mismatch_and_explains_steps_is_a_total(tmp_path):
    gt = _gt()
    state = train(gt, _cfg(steps=10), 16, [0, 1], progress=False, checkpoint=str(tmp_path / "ck"))
    ck = load_checkpoint(tmp_path / "ck")
    for kw, match in [(dict(seeds=[0]), "seeds"), (dict(n_q=999), "n_q=16"), (dict(cfg=_cfg(method="relu", steps=30)),
                      "method='topk'"), (dict(cfg=_cfg(steps=10)), "steps=10 is a total"),
                      (dict(cfg=_cfg(steps=5)), "ask steps > 10")]:
        args = dict(cfg=_cfg(steps=30), n_q=16, seeds=[0, 1]) | kw
        with pytest.raises(ValueError, match=match):
            train(gt, args["cfg"], args["n_q"], args["seeds"], state=load_checkpoint(tmp_path / "ck"),
                  progress=False)
    more = train(gt, _cfg(steps=30, lr=5e-3), 16, [0, 1], state=ck, progress=False)   # lr may change
    assert more.step == 30 and state.step == 10


def test_checkpoints_are_safetensors_and_json_and_bad_files_are_named(tmp_path):
    train(_gt(), _cfg(), 16, [0], progress=False, checkpoint=str(tmp_path / "ck"))
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert files == ["checkpoint.safetensors", "state.json"]
    data = (tmp_path / "ck" / "checkpoint.safetensors").read_bytes()
    (tmp_path / "ck" / "checkpoint.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checkpoint.safetensors: corrupt or truncated"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="state.json: corrupt JSON"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not an sdl_paper dictionary"):
        (tmp_path / "fake").mkdir()
        (tmp_path / "fake" / "dictionary.safetensors").write_bytes(b"")
        (tmp_path / "fake" / "config.json").write_text('{"format": "something else"}')
        load_dictionary(tmp_path / "fake")


def test_saving_never_clobbers_a_foreign_folder_and_leaves_no_temporary_files(tmp_path):
    d = Dictionary.from_state(train(_gt(), _cfg(), 16, [0], progress=False))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a dictionary folder"):
        save_dictionary(d, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    save_dictionary(d, tmp_path / "d")
    save_dictionary(d, tmp_path / "d")                                  # replacing our own folder is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "mine"]
