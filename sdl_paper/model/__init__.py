"""The model (layer 2): the configuration in parts (``config``), the registry of methods (``methods``), the model
form of K batched dictionaries with encode / decode and the conversion to the theory's SDL module
(``dictionary``), JumpReLU's straight-through kernels (``kernels``), the sparse TopK path (``sparse``), measures
against data and ground truth (``measures``) and the audit of any dictionary (``audit``).
"""
from .audit import audit
from .config import Config
from .dictionary import Dictionary, decode, encode, init_params, to_sdl, with_decoder
from .measures import evaluate, feature_pattern, fixed_views, track
from .methods import METHODS, Method

__all__ = ["Config", "Dictionary", "METHODS", "Method", "audit", "decode", "encode", "evaluate", "feature_pattern",
           "fixed_views", "init_params", "to_sdl", "track", "with_decoder"]
