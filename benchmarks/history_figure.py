"""The one-call training-curve figure (``sdl.plot_history``) of a TopK SAE trained on a small network's
activations, as the user guide trains it (writes benchmarks/figures/training_curves.png).

    .venv/bin/python benchmarks/history_figure.py
"""
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

import sdl_paper as sdl
from sdl_paper.data import digits

matplotlib.use("Agg")
net = digits.train_digits_network(seed=0)
acts, _ = net.activations("train")                        # (N, 128) hidden activations
cfg = sdl.Config(k=8, steps=1500, batch_size=256, lr=3e-3, lr_warm_up_steps=100, log_every=20)
state = sdl.train(acts, cfg, 128, [0], device="cpu", progress=False)
fig = sdl.plot_history(state)
out = Path(__file__).with_name("figures") / "training_curves.png"
fig.savefig(out, dpi=110, bbox_inches="tight")
plt.close(fig)
print(f"wrote {out}; final explained variance {state.history[-1]['EV'][0]:.3f}")
