"""wengert.nn: a Flux-style layer library on `wengert.ad`.

Models are plain code: layers are small dataclasses registered as trees and
called like functions; gradients are explicit
(``ad.gradient(lambda m: loss(m(x), y), model)`` is model-shaped);
optimisers are functional state trees. Channels-last (NHWC) layout.
See packages/nn/README.md and shared/DESIGN.md.
"""

from . import activations, init, layers, losses, models, optimisers, schedules
from .activations import *
from .core import (Buffer, Layer, count_parameters, freeze, named_parameters, parameters, static,
                   testmode, thaw, trainmode)
from .data import DataLoader
from .device import to_device
from .errors import ShapeError
from .init import seed
from .interop import from_torch, to_torch_state_dict
from .io import load, save, state_dict
from .layers import *
from .losses import *
from .onehot import onecold, onehot
from .optimisers import *
from .state import StateNotUpdatedWarning, pullback, withgradient
from .train import EarlyStopping, Logger, NonFiniteError, StopTraining, TrainInfo, train, train_step

__version__ = "0.1.0"

# The star-imported modules' names come from their own lists (listed once, where defined).
__all__ = ["Buffer", "DataLoader", "EarlyStopping", "Layer", "Logger", "NonFiniteError",
           "ShapeError", "StateNotUpdatedWarning", "StopTraining", "TrainInfo", "count_parameters",
           "freeze", "from_torch", "init", "load", "models", "named_parameters", "onecold",
           "onehot", "parameters", "pullback", "save", "schedules", "seed", "state_dict", "static",
           "testmode", "thaw", "to_device", "to_torch_state_dict", "train", "train_step",
           "trainmode", "withgradient"]
__all__ += activations.__all__ + layers.__all__ + losses.__all__ + optimisers.__all__
