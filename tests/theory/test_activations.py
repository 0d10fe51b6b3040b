import pytest
import torch

from sdl_paper.theory import activations as A

SPECS = ["relu", "jumprelu:0.3", "topk:3", "batchtopk:3", "relu>topk:1", "topk:5>jumprelu:0.2", "literaltopk:2"]


@pytest.mark.parametrize("spec", SPECS)
def test_every_activation_keeps_or_zeroes_each_coordinate(spec):
    z = torch.randn(64, 20, generator=torch.Generator().manual_seed(0))
    assert A.keeps_or_zeroes(A.make_activation(spec), z)


def test_a_broken_activation_fails_the_check():
    assert not A.keeps_or_zeroes(torch.nn.Softplus(), torch.randn(4, 5))


def test_topk_keeps_exactly_k_positive_entries_per_row():
    z = torch.randn(32, 50, generator=torch.Generator().manual_seed(1)).abs() + 0.1
    out = A.make_activation("topk:4")(z)
    assert ((out != 0).sum(1) == 4).all()
    assert torch.equal(out.max(1).values, z.max(1).values)


def test_batchtopk_keeps_k_times_batch_entries_overall():
    z = torch.randn(16, 30, generator=torch.Generator().manual_seed(2)).abs() + 0.1
    out = A.make_activation("batchtopk:3")(z)
    assert (out != 0).sum() == 48
    assert (out != 0).sum(1).float().std() > 0          # unlike TopK, rows may differ


def test_homogeneity_is_declared_correctly():
    z = torch.randn(8, 10, generator=torch.Generator().manual_seed(3))
    for spec in SPECS:
        sigma = A.make_activation(spec)
        if sigma.homogeneous:
            assert torch.allclose(sigma(2.5 * z), 2.5 * sigma(z))
    jump = A.make_activation("jumprelu:0.5")
    assert not jump.homogeneous and not torch.allclose(jump(3 * z), 3 * jump(z))


def test_homogeneity_is_per_sample_and_batchtopk_has_only_the_common_scale_version():
    g = torch.Generator().manual_seed(4)
    z, t = torch.randn(16, 10, generator=g), torch.rand(16, 1, generator=g) * 4 + 0.25   # one t per sample
    for spec in SPECS:
        sigma = A.make_activation(spec)
        assert torch.allclose(sigma(t * z), t * sigma(z)) == sigma.homogeneous, spec
    batch = A.make_activation("batchtopk:3")
    assert torch.allclose(batch(1.7 * z), 1.7 * batch(z))                # one common scale commutes


@pytest.mark.parametrize("spec,match", [("gelu", "unknown activation 'gelu'"), ("topk", "needs its k"),
                                        ("topk:two", "not a number"), ("relu:3", "takes no argument"),
                                        ("topk:0", "k >= 1"), ("jumprelu:-1", "theta must be finite and >= 0"), ("", "non-empty")])
def test_bad_specs_are_rejected_with_a_clear_message(spec, match):
    with pytest.raises(ValueError, match=match):
        A.make_activation(spec)


def test_topk_larger_than_the_dictionary_is_rejected():
    with pytest.raises(ValueError, match="exceeds the number of latents"):
        A.make_activation("topk:9")(torch.randn(2, 8))
