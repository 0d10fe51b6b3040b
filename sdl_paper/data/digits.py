"""A network trained here, for dictionaries on real activations: an MLP classifier on scikit-learn's digits.

The paper tests feature anchoring on CLIP embeddings (its Table 2) and resampling on an LLM (its Fig. 7); neither
runs on this project's machine. This module gives a small stand-in with no download: scikit-learn's bundled
8 x 8 digits (1797 images, 64 pixels, 10 classes), a one-hidden-layer ReLU MLP trained full-batch on the CPU in a
few seconds, its hidden activations (N, hidden), and the ground-truth *proxy* the paper uses on real data:
normalised class-mean directions (used by the real-activations chapter).

Randomness: the split uses ``seed`` (stratified), the initialisation a local torch seed (the global RNG is
restored afterwards), and training is full-batch, so a seed gives the same network on the same machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

N_CLASSES = 10


@dataclass
class DigitsNetwork:
    """A trained 64 -> hidden -> 10 ReLU MLP and its data split.

    Attributes:
        model: ``nn.Sequential(Linear(64, hidden), ReLU(), Linear(hidden, 10))`` in eval mode.
        X_train, X_test: (N, 64) float pixels scaled to [0, 1]. y_train, y_test: (N,) int64 labels.
        train_acc, test_acc: classification accuracy on each split.
        losses: full-batch cross-entropy at every step (steps,).
    """

    model: nn.Sequential
    X_train: Tensor
    X_test: Tensor
    y_train: Tensor
    y_test: Tensor
    train_acc: float
    test_acc: float
    losses: list[float]

    @property
    def hidden(self) -> int:
        """Width of the hidden layer."""
        return self.model[0].out_features

    @torch.no_grad()
    def activations(self, split: str = "train") -> tuple[Tensor, Tensor]:
        """(post-ReLU hidden activations (N, hidden), labels (N,)) of the ``train`` or ``test`` split."""
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r}; allowed: 'train', 'test'")
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        return self.model[1](self.model[0](X)), y

    @torch.no_grad()
    def accuracy(self, X: Tensor, y: Tensor) -> float:
        """Fraction of rows of X (N, 64) classified as y (N,)."""
        return (self.model(X).argmax(1) == y).float().mean().item()


def load_split(seed: int = 0, test_fraction: float = 0.25) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Digits split stratified by class: X_train (N, 64), X_test, y_train (N,), y_test; pixels / 16 in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16.0, y, test_size=test_fraction, stratify=y, random_state=seed)
    f, i = (lambda a: torch.tensor(a, dtype=torch.float32)), (lambda a: torch.tensor(a, dtype=torch.int64))
    return f(X_tr), f(X_te), i(y_tr), i(y_te)


def train_digits_network(seed: int = 0, hidden: int = 128, steps: int = 300, lr: float = 0.01,
                         weight_decay: float = 1e-4, test_fraction: float = 0.25) -> DigitsNetwork:
    """Train the MLP with full-batch Adam on the training split (cross-entropy); seconds on one CPU core.

    Args:
        seed: seeds the split and the initialisation.
        hidden: width of the hidden ReLU layer (the activations a dictionary is trained on).
        steps: full-batch Adam steps. lr, weight_decay: Adam's (decoupled weight decay: AdamW).
    """
    if hidden < 1 or steps < 0:
        raise ValueError(f"need hidden >= 1 and steps >= 0; got hidden={hidden}, steps={steps}")
    X_tr, X_te, y_tr, y_te = load_split(seed, test_fraction)
    with torch.random.fork_rng(devices=[]):                 # local seed: the caller's global RNG is untouched
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(X_tr.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, N_CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(X_tr), y_tr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval().requires_grad_(False)
    net = DigitsNetwork(model, X_tr, X_te, y_tr, y_te, 0.0, 0.0, losses)
    net.train_acc, net.test_acc = net.accuracy(X_tr, y_tr), net.accuracy(X_te, y_te)
    return net


def class_means(acts: Tensor, labels: Tensor, centre: bool = True) -> Tensor:
    """Unit-norm class-mean directions (hidden, n_classes), one column per class, from acts (N, hidden).

    With ``centre`` the mean activation over all rows is subtracted first. Post-ReLU activations are
    non-negative, so their raw class means share a large common component (the overall mean) and are nearly
    parallel; centred, each column is what distinguishes its class from the average input.
    """
    x = acts - acts.mean(0) if centre else acts
    classes = torch.unique(labels)
    means = torch.stack([x[labels == c].mean(0) for c in classes], dim=1)       # (hidden, n_classes)
    return means / means.norm(dim=0, keepdim=True).clamp_min(1e-12)


def max_interference(W: Tensor) -> float:
    """max_{i != j} |cos(w_i, w_j)| over the columns of W (d, n)."""
    W = W / W.norm(dim=0, keepdim=True).clamp_min(1e-12)
    G = (W.T @ W).abs()
    return G.masked_fill(torch.eye(G.shape[0], dtype=torch.bool), 0.0).max().item()


def shuffled(acts: Tensor, seed: int = 0) -> Tensor:
    """A control (N, hidden): each coordinate of acts permuted independently over rows. Every marginal is kept;
    the joint structure (which units fire together, hence the class directions) is destroyed."""
    g = np.random.default_rng(seed)
    idx = np.stack([g.permutation(acts.shape[0]) for _ in range(acts.shape[1])], axis=1)   # (N, hidden)
    return torch.gather(acts, 0, torch.from_numpy(idx))
