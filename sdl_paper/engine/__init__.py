"""The training engine: batched training of K models (trainer, kernels, sparse), dead-latent remedies (resampling),
multi-process training (distributed), devices, progress bars, and the controlled experiments built on it.
"""
