"""sdl_paper: executable companion to Tang et al., *A Unified Theory of Sparse Dictionary Learning in Mechanistic
Interpretability* (arXiv:2512.05534; v1 titled *On the Theoretical Foundation of ...*).

The names most work needs are here: ``train``, ``Config``, ``Dictionary``, ``save_dictionary`` /
``load_dictionary``, ``save_checkpoint`` / ``load_checkpoint``, ``as_source``, ``audit``, ``export_saelens`` /
``import_saelens``, ``make_world``, and ``plot_history`` (a run's training curves in one call).

Subpackages, one layer each; a layer imports only the layers below it (``tests/test_layers.py`` checks it):

0. :mod:`sdl_paper.data`: ground truth under the linear representation hypothesis, activations in tensors and files.
1. :mod:`sdl_paper.theory`: the paper's mathematics (the SDL model and its losses, activations, the instantiation
   table, the theorems' constructions and checks, metrics); pure functions, no training.
2. :mod:`sdl_paper.model`: the configuration, the registry of methods, the dictionary's model form, measures, audit.
3. :mod:`sdl_paper.io`: safetensors + JSON files, SAELens's layout both ways.
4. :mod:`sdl_paper.training`: the one training loop and its callbacks, checkpoints, resampling, data parallelism.
5. :mod:`sdl_paper.studies`: the experiments behind the chapters, the paper's numbers, every verdict rule.
6. :mod:`sdl_paper.book`: the chapters, their parameters, the ledger and the ``sdl-paper`` command.
"""
from .data.arrays import as_source
from .data.ground_truth import Coefficients, GroundTruth, World, feature_matrix, make_world
from .io.files import load_dictionary, save_dictionary
from .io.saelens import export_saelens, import_saelens
from .model.audit import audit
from .model.config import Config
from .model.dictionary import Dictionary
from .theory.framework import SDL, per_feature_loss, sdl_loss
from .training.callbacks import Callback, TrainingDiverged
from .training.checkpoint import load_checkpoint, save_checkpoint
from .training.history import plot as plot_history
from .training.loop import train

__all__ = ["Callback", "Coefficients", "Config", "Dictionary", "GroundTruth", "SDL", "TrainingDiverged", "World",
           "as_source", "audit", "export_saelens", "feature_matrix", "import_saelens", "load_checkpoint",
           "load_dictionary", "make_world", "per_feature_loss", "plot_history", "save_checkpoint", "save_dictionary", "sdl_loss",
           "train"]
__version__ = "0.1.0"
