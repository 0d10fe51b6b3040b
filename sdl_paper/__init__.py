"""sdl_paper: executable companion to Tang, Saini, Liao, Liu, *On the Theoretical Foundation of Sparse Dictionary
Learning in Mechanistic Interpretability* (arXiv:2512.05534).

Modules follow the paper's concepts: :mod:`data` (ground truth under the linear representation hypothesis),
:mod:`activations`, :mod:`framework` (the unified SDL model and its losses), :mod:`methods` (the instantiation
table), :mod:`train`, :mod:`metrics`, :mod:`plots`, :mod:`chapters` and :mod:`cli` (re-running the book).
"""
from .data import Coefficients, GroundTruth, World, feature_matrix, make_world
from .framework import SDL, per_feature_loss, sdl_loss

__all__ = ["Coefficients", "GroundTruth", "World", "feature_matrix", "make_world", "SDL", "per_feature_loss",
           "sdl_loss"]
__version__ = "0.1.0"
