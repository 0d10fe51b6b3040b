"""The optimiser step (sdl_paper.training.optim): per-model gradient clipping."""
import torch


def test_gradient_clipping_is_per_model():
    from sdl_paper.training.optim import clip_per_model

    params = {"W": torch.zeros(2, 3, requires_grad=True)}
    params["W"].grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])   # norms 5 and 0.5
    clip_per_model(params, 1.0)
    assert torch.allclose(params["W"].grad.norm(dim=1), torch.tensor([1.0, 0.5]), atol=1e-5)


def test_gradient_clipping_of_one_model_equals_its_slice_of_a_batch():
    from sdl_paper.training.optim import clip_per_model

    g = torch.Generator().manual_seed(0)
    grads = {"W_E": 3 * torch.randn(2, 5, 4, generator=g), "W_D": torch.randn(2, 5, 4, generator=g).transpose(1, 2)}
    batch = {n: torch.zeros(2, *v.shape[1:]).requires_grad_(True) for n, v in grads.items()}
    alone = {n: torch.zeros(1, *v.shape[1:]).requires_grad_(True) for n, v in grads.items()}
    for n in grads:
        batch[n].grad, alone[n].grad = grads[n].clone(), grads[n][:1].clone()
    clip_per_model(batch, 1.0)
    clip_per_model(alone, 1.0)                      # K = 1: torch's clip_grad_norm_
    for n in grads:
        assert torch.allclose(alone[n].grad[0], batch[n].grad[0], atol=1e-6), n
    total = torch.sqrt(sum(alone[n].grad.pow(2).sum() for n in grads))
    assert torch.isclose(total, torch.tensor(1.0), atol=1e-5)
