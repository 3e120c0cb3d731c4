"""wengert.nn: a Flux-style layer library on `wengert.ad`.

Models are plain code: layers are small dataclasses registered as trees and
called like functions; gradients are explicit
(``ad.gradient(lambda m: loss(m(x), y), model)`` is model-shaped);
optimisers are functional state trees. Channels-last (NHWC) layout.
See packages/nn/README.md and shared/DESIGN.md.
"""

from . import init, models, schedules
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .core import Buffer, Layer, count_parameters, freeze, static, testmode, thaw, trainmode
from .data import DataLoader
from .device import to_device
from .io import load, save, state_dict
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers
from .losses import *  # noqa: F401,F403
from .losses import __all__ as _losses
from .onehot import onecold, onehot
from .optimisers import *  # noqa: F401,F403
from .optimisers import __all__ as _optimisers
from .state import withgradient
from .train import EarlyStopping, Logger, StopTraining, TrainInfo, train, train_step

__version__ = "0.1.0"

__all__ = [*_activations, *_layers, *_losses, *_optimisers, "Buffer", "DataLoader",
           "EarlyStopping", "Layer", "Logger", "StopTraining", "TrainInfo", "count_parameters",
           "freeze", "init", "load", "models", "onecold", "onehot", "save", "schedules",
           "state_dict", "static", "testmode", "thaw", "to_device", "train", "train_step",
           "trainmode", "withgradient"]
