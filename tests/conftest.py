"""Fixtures shared by the package's tests."""
import pytest
import torch


@pytest.fixture
def float64():
    """Runs that must agree but reduce in different orders (batched or alone, sparse or dense) are compared in
    float64: there the rounding stays far below the tolerance, while in float32 a near-tie in a top-k or at a
    ReLU or JumpReLU threshold could flip on some CPU and let the runs drift apart."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
