"""sdl_paper: executable companion to Tang, Saini, Liao, Liu, *On the Theoretical Foundation of Sparse Dictionary
Learning in Mechanistic Interpretability* (arXiv:2512.05534).

Subpackages, by role:

- :mod:`sdl_paper.theory`: the paper's mathematics (``activations``, ``framework``: the unified SDL model and its
  losses, ``methods``: the instantiation table, ``approximation``, ``regions``, ``minima``, ``global_minima``,
  ``absorption``, ``metrics``).
- :mod:`sdl_paper.engine`: training (``trainer``, ``kernels``, ``resampling``, ``distributed``, ``device``,
  ``progress``) and the controlled experiments (``experiments``, ``absorption_experiments``).
- :mod:`sdl_paper.sources`: data (``ground_truth``: synthetic ground truth under the linear representation
  hypothesis).
- :mod:`sdl_paper.book`: the chapters and the ``sdl-paper`` command (``chapters``, ``parameters``, ``runner``,
  ``render``, ``cli``, ``bookexec``, ``ledger``, ``plots``).
"""
from .sources.ground_truth import Coefficients, GroundTruth, World, feature_matrix, make_world
from .theory.framework import SDL, per_feature_loss, sdl_loss

__all__ = ["Coefficients", "GroundTruth", "World", "feature_matrix", "make_world", "SDL", "per_feature_loss",
           "sdl_loss"]
__version__ = "0.1.0"
