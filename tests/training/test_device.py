import pytest
import torch

from sdl_paper.training.device import default_device, describe


def test_automatic_device_falls_back_to_the_cpu():
    dev = default_device()
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert describe(torch.device("cpu")).startswith("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(ValueError, match="sees no CUDA device"):
        default_device("cuda")
