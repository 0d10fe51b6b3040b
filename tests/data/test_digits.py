import pytest
import torch

from sdl_paper.data import digits


@pytest.fixture(scope="module")
def net():
    return digits.train_digits_network(0, hidden=32, steps=150)


def test_a_seed_gives_the_same_network_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = (digits.train_digits_network(3, hidden=16, steps=60) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert a.losses == b.losses and a.test_acc == b.test_acc
    c = digits.train_digits_network(4, hidden=16, steps=60)
    assert not torch.equal(a.model[0].weight, c.model[0].weight)


def test_the_trained_network_classifies_held_out_digits_and_an_untrained_one_does_not(net):
    untrained = digits.train_digits_network(0, hidden=32, steps=0)
    assert net.test_acc > 0.9 and net.train_acc > 0.95      # measured: 0.97 test, 1.0 train
    assert untrained.test_acc < 0.2                           # chance is 0.1
    assert net.losses[-1] < 0.1 * net.losses[0]


def test_the_default_network_reaches_its_documented_accuracy():
    default = digits.train_digits_network(0)                  # 64 -> 128 -> 10, 300 steps: about 0.5 s
    assert default.hidden == 128 and default.test_acc > 0.95  # measured 0.964 (seeds 0-4: 0.964-0.982)


def test_activations_are_post_relu_rows_of_each_split_with_their_labels(net):
    H, y = net.activations("train")
    H_te, y_te = net.activations("test")
    assert H.shape == (len(net.y_train), 32) and H_te.shape == (len(net.y_test), 32)
    assert len(y) + len(y_te) == 1797 and (H >= 0).all() and torch.equal(y, net.y_train)
    assert set(y_te.tolist()) == set(range(10))              # stratified: every class in the test split
    with pytest.raises(ValueError, match="allowed: 'train', 'test'"):
        net.activations("val")


def test_class_means_are_unit_columns_and_centring_separates_them(net):
    H, y = net.activations()
    W, W_raw = digits.class_means(H, y), digits.class_means(H, y, centre=False)
    assert W.shape == (32, 10) and torch.allclose(W.norm(dim=0), torch.ones(10))
    counts = torch.bincount(y).float()
    means = torch.stack([H[y == c].mean(0) - H.mean(0) for c in range(10)], 1)
    assert torch.allclose(means @ counts, torch.zeros(32), atol=1e-3)   # centred means sum to zero
    assert torch.allclose(W, means / means.norm(dim=0))
    assert digits.max_interference(W) < digits.max_interference(W_raw)
    assert digits.max_interference(W) < 0.95                  # no two classes share a direction


def test_max_interference_is_the_largest_off_diagonal_abs_cosine():
    assert digits.max_interference(torch.eye(3)) == 0.0
    W = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 1.0]])     # columns 0 and 1 are opposite
    assert digits.max_interference(W) == pytest.approx(1.0)


def test_shuffling_keeps_every_coordinate_but_destroys_the_class_structure(net):
    H, y = net.activations()
    S = digits.shuffled(H, seed=0)
    assert torch.equal(S.sort(0).values, H.sort(0).values)   # each column is a permutation of itself
    assert not torch.equal(S, H) and torch.equal(S, digits.shuffled(H, seed=0))
    own = torch.nn.functional.cosine_similarity(H - H.mean(0), digits.class_means(H, y)[:, y].T, dim=1)
    mixed = torch.nn.functional.cosine_similarity(S - S.mean(0), digits.class_means(H, y)[:, y].T, dim=1)
    assert own.mean() > 0.5 > 0.2 > mixed.mean()              # images align with their class mean; shuffled don't
