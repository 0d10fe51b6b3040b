"""Training (layer 4): the one loop (``loop``: :func:`train` and :func:`fit`), its objective (``objective``), the
optimiser step (``optim``), the run's state (``state``), callbacks (``callbacks``: remedies, checks, logging,
tracking, progress, checkpoints), checkpoint files (``checkpoint``), neuron resampling (``resampling``),
data parallelism (``distributed``), devices and progress bars.
"""
from .callbacks import Callback, TrainingDiverged
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import Run, fit, train
from .objective import objective
from .state import State, dead_mask, init_state, select, to_device

__all__ = ["Callback", "Run", "State", "TrainingDiverged", "dead_mask", "fit", "init_state", "load_checkpoint", "select",
           "objective", "save_checkpoint", "to_device", "train"]
