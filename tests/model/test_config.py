"""The configuration in parts (sdl_paper.model.config): each part validates its own fields, Config reads and builds
them flat, is immutable, round-trips through files, and names the two practices."""
import pytest

from sdl_paper import Config
from sdl_paper.model.config import FIELDS, PARTS, AnchorConfig, LogConfig, ModelConfig, OptimConfig, RemedyConfig


@pytest.mark.parametrize("kw, match", [
    (dict(resample_at=(100,)), "only apply with remedy='resample'"),
    (dict(resample_every=50, remedy="auxk"), "only apply with remedy='resample'"),
    (dict(aux_k=8), "only applies with remedy in"),
    (dict(remedy="auxk_input", sparse=True), "dense path only"),
    (dict(prefixes=(4, 8)), "only apply to method='matryoshka'"),
    (dict(method="matryoshka", prefixes=(8, 4)), "strictly increasing"),
    (dict(method="topk", activation="relu"), "only with method='relu'"),
    (dict(method="relu", activation="sparkle"), "unknown activation"),
    (dict(method="gated"), "allowed: relu"),
])
def test_config_refuses_settings_that_would_be_ignored_or_cannot_run(kw, match):
    with pytest.raises(ValueError, match=match):
        Config.theory(**kw)



def test_help_shows_every_field_with_its_meaning():
    doc = Config.__doc__
    for name in FIELDS:
        assert f"{name}:" in doc or f" {name}: " in doc, f"Config field {name} is not documented"



def test_config_round_trips_through_a_dict_and_refuses_unknown_keys():
    cfg = Config.theory(method="matryoshka", prefixes=(2, 8), k=2)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown Config fields"):
        Config.from_dict({"d_sae": 16})



@pytest.mark.parametrize("part, kw, error", [
    (ModelConfig, dict(k=0), "k=0 must be >= 1"),
    (ModelConfig, dict(method="gated"), "allowed: relu"),
    (OptimConfig, dict(lr=0.0), "lr=0.0 must be > 0"),
    (OptimConfig, dict(amp="fp8"), "allowed: 'fp32', 'bf16'"),
    (RemedyConfig, dict(remedy="revive"), "allowed: none, resample, auxk, auxk_input"),
    (RemedyConfig, dict(aux_k=4), "only applies with remedy in"),
    (AnchorConfig, dict(anchor_coef=-1.0), "must be >= 0"),
    (LogConfig, dict(tau=1.0), "must be in \\(0, 1\\)"),
])
def test_each_part_refuses_its_own_bad_values_where_it_is_defined(part, kw, error):
    with pytest.raises((ValueError, TypeError), match=error):
        part(**kw)
    with pytest.raises((ValueError, TypeError), match=error):
        Config.theory(**kw)                                    # the flat constructor routes to the same check


def test_flat_and_part_construction_agree_and_every_field_belongs_to_one_part():
    assert sorted(FIELDS) == sorted(f for cls in PARTS.values() for f in cls.__dataclass_fields__)
    flat = Config.theory(method="relu", l1=0.3, lr=2e-3, steps=10, remedy="resample", resample_at=(5,), log_every=2)
    parts = Config(model=ModelConfig(method="relu", l1=0.3), optim=OptimConfig(lr=2e-3, steps=10),
                   remedies=RemedyConfig(remedy="resample", resample_at=(5,)), logging=LogConfig(log_every=2))
    assert flat == parts and flat.model == parts.model and flat.lr == 2e-3 and flat.optim.lr == 2e-3
    with pytest.raises(TypeError, match="not both"):
        Config(optim=OptimConfig(), lr=1.0)
    with pytest.raises(TypeError, match="unknown Config fields"):
        Config.theory(d_sae=16)


def test_a_config_is_immutable_and_replace_gives_a_checked_copy():
    cfg = Config.theory(k=2)
    with pytest.raises(AttributeError, match="immutable"):
        cfg.k = 3
    with pytest.raises(Exception):
        cfg.model.k = 3                                  # frozen part
    assert cfg.replace(k=3).k == 3 and cfg.k == 2
    with pytest.raises(ValueError, match="k=0"):
        cfg.replace(k=0)


def test_the_two_practices_are_named_constructors():
    theory = Config.theory("topk", k=8)
    assert theory.practice == "theory" and theory.k == 8 and not theory.bias and theory.unit_decoder
    std = Config.standard("topk", k=8)
    # SAELens 6.54.12's TopK trainer defaults, as the docstring lists them
    assert (std.practice, std.bias, std.init_scale, std.unit_decoder, std.lr, std.clip_grad, std.dead_window,
            std.remedy, std.aux_coef) == ("standard", True, 0.1, False, 3e-4, 1.0, 1000, "auxk", 1.0)
    assert Config.standard("jumprelu").l0 == 1.0 and Config.standard("relu_dec").l1 == 1.0
    assert Config.standard("topk").rescaled and not theory.rescaled
    with pytest.raises(ValueError, match="no standard practice for method='relu'"):
        Config.standard("relu")


def test_a_flat_config_is_the_standard_practice_unless_theory_is_asked():
    assert Config() == Config.standard("topk") and Config(k=8, lr=1e-3) == Config.standard("topk", k=8, lr=1e-3)
    assert Config(method="jumprelu") == Config.standard("jumprelu")
    assert Config(practice="theory") == Config.theory() and not Config.theory().bias
    # a part given whole keeps its own values: the practice fills only the fields built flat
    assert Config(practice="standard", optim=OptimConfig(lr=2e-3), bias=True).lr == 2e-3
    with pytest.raises(ValueError, match=r"method='relu'.*use Config.theory"):
        Config(method="relu", l1=0.3)


@pytest.mark.parametrize("cfg", [Config(k=8), Config.theory("relu", l1=0.3, bias=True), Config(method="relu_dec"),
                                 Config.standard("topk", lr=1e-3, remedy="none")])
def test_repr_names_the_practice_and_rebuilds_the_same_config(cfg):
    text = repr(cfg)
    assert text.startswith(f"Config(practice={cfg.practice!r}, method={cfg.method!r}")
    assert eval(text) == cfg


@pytest.mark.parametrize("kw, error", [
    (dict(bias="False"), "bias='False' must be True or False"),
    (dict(tied=1), "tied=1 must be True or False"),
    (dict(betas=(2, 0.5)), "betas=\\(2, 0.5\\) must be two floats in \\[0, 1\\)"),
    (dict(betas=(0.9,)), "must be two floats"),
    (dict(lr=float("inf")), "must be finite"),
    (dict(l1=float("nan")), "must be finite"),
    (dict(lr=(1e-3, float("nan"))), "must be finite"),
    (dict(clip_grad=float("nan")), "must be a finite float"),
    (dict(theta_init="0.1"), "must be a finite float"),
    (dict(method="relu", activation="jumprelu:nan"), "finite"),
    (dict(remedy="resample"), "needs a schedule"),
    (dict(method=3), "must be a string"),
    (dict(prefixes="48"), "must be a list of ints"),
])
def test_config_refuses_values_of_the_wrong_type_or_not_finite(kw, error):
    with pytest.raises((ValueError, TypeError), match=error):
        Config.theory(**kw)


def test_k_is_refused_where_it_has_no_effect_but_old_files_still_load():
    with pytest.raises(ValueError, match="k=8 has no effect with method='relu'"):
        Config.theory(method="relu", k=8)
    old = Config.theory(method="relu").to_dict() | {"k": 8}             # written before k was checked
    assert Config.from_dict(old) == Config.theory(method="relu")
    assert Config.theory(method="topk", k=8).k == 8
