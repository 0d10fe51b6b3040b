"""The data stream both SAELens cross-checks feed to SAELens and to our engine: ground-truth codes drawn once per
seed, replayed in order to SAELens's trainer (which calls its generator with the batch size)."""
import torch


def stream(gt, seed: int, steps: int, batch: int) -> list[torch.Tensor]:
    """``steps`` batches of ``batch`` codes of the ground truth ``gt``, seeded."""
    g = torch.Generator().manual_seed(seed + 777)
    return [gt.coefficients.sample(batch, g) for _ in range(steps)]


class Replay:
    """The stream's codes, in order, for SAELens's trainer."""

    def __init__(self, codes: list[torch.Tensor]):
        self.codes, self.i = codes, 0

    def sample(self, n: int) -> torch.Tensor:
        c = self.codes[self.i % len(self.codes)]
        assert n == len(c), (n, len(c))
        self.i += 1
        return c

    __call__ = sample
