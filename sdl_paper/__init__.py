"""sdl_paper: executable companion to Tang, Saini, Liao, Liu, *On the Theoretical Foundation of Sparse Dictionary
Learning in Mechanistic Interpretability* (arXiv:2512.05534).

The names most work needs are here: ``train``, ``Config``, ``Dictionary``, ``save_dictionary`` /
``load_dictionary``, ``save_checkpoint`` / ``load_checkpoint``, ``as_source``, ``audit``, ``export_saelens`` /
``import_saelens``, ``make_world``. Subpackages, by role:

- :mod:`sdl_paper.theory`: the paper's mathematics (``activations``, ``framework``: the unified SDL model and its
  losses, ``methods``: the instantiation table, ``approximation``, ``regions``, ``minima``, ``global_minima``,
  ``absorption``, ``metrics``).
- :mod:`sdl_paper.engine`: training (``dictionary``: the model form and Config, ``trainer``: the one training loop,
  ``kernels``, ``sparse``: the sparse TopK path, ``resampling``, ``distributed``, ``device``, ``progress``),
  ``audit``, and the controlled experiments (``experiments``, ``absorption_experiments``).
- :mod:`sdl_paper.sources`: data (``ground_truth``: synthetic ground truth under the linear representation
  hypothesis; ``arrays``: tensors, iterators and ``.npy`` / ``.safetensors`` activations read by rows).
- :mod:`sdl_paper.formats`: files (``files``: safetensors + JSON dictionaries and checkpoints; ``saelens``: SAELens's
  layout, both ways).
- :mod:`sdl_paper.book`: the chapters and the ``sdl-paper`` command (``chapters``, ``parameters``, ``runner``,
  ``render``, ``cli``, ``bookexec``, ``ledger``, ``plots``).
"""
from .engine.audit import audit
from .engine.dictionary import Config, Dictionary
from .engine.trainer import TrainingDiverged, train
from .formats.files import load_checkpoint, load_dictionary, save_checkpoint, save_dictionary
from .formats.saelens import export_saelens, import_saelens
from .sources.arrays import as_source
from .sources.ground_truth import Coefficients, GroundTruth, World, feature_matrix, make_world
from .theory.framework import SDL, per_feature_loss, sdl_loss

__all__ = ["Coefficients", "Config", "Dictionary", "GroundTruth", "SDL", "TrainingDiverged", "World", "as_source",
           "audit", "export_saelens", "feature_matrix", "import_saelens", "load_checkpoint", "load_dictionary",
           "make_world", "per_feature_loss", "save_checkpoint", "save_dictionary", "sdl_loss", "train"]
__version__ = "0.1.0"
