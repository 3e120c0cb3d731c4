"""wengert.nn: a Flux-style layer library on `wengert.ad`.

Models are plain code: layers are small dataclasses registered as trees and
called like functions; gradients are explicit
(``ad.gradient(lambda m: loss(m(x), y), model)`` is model-shaped);
optimisers are functional state trees. Channels-last (NHWC) layout.
See packages/nn/README.md and shared/DESIGN.md.
"""

from . import init, models, schedules
from .activations import *
from .core import Buffer, Layer, count_parameters, freeze, static, testmode, thaw, trainmode
from .data import DataLoader
from .device import to_device
from .io import load, save, state_dict
from .layers import *
from .losses import *
from .onehot import onecold, onehot
from .optimisers import *
from .state import withgradient
from .train import EarlyStopping, Logger, StopTraining, TrainInfo, train, train_step

__version__ = "0.1.0"

__all__ = [
           "GRU",
           "LSTM",
           "RNN",
           "AMSGrad",
           "AdaDelta",
           "AdaGrad",
           "Adam",
           "AdamW",
           "AdaptiveMeanPool",
           "BatchNorm",
           "Bilinear",
           "Buffer",
           "Chain",
           "ClipGrad",
           "ClipNorm",
           "Conv",
           "ConvTranspose",
           "DataLoader",
           "Dense",
           "DepthwiseConv",
           "Descent",
           "Dropout",
           "EarlyStopping",
           "Embedding",
           "Flatten",
           "GRUCell",
           "GlobalMaxPool",
           "GlobalMeanPool",
           "GroupNorm",
           "InstanceNorm",
           "LSTMCell",
           "Layer",
           "LayerNorm",
           "Lion",
           "Logger",
           "MaxPool",
           "Maxout",
           "MeanPool",
           "Momentum",
           "MultiHeadAttention",
           "NAdam",
           "Nesterov",
           "OptState",
           "Optimiser",
           "OptimiserChain",
           "Parallel",
           "RMSProp",
           "RNNCell",
           "Recurrence",
           "SkipConnection",
           "StopTraining",
           "TrainInfo",
           "Upsample",
           "WeightDecay",
           "binarycrossentropy",
           "causal_mask",
           "celu",
           "count_parameters",
           "crossentropy",
           "elu",
           "freeze",
           "gelu",
           "hardsigmoid",
           "hardtanh",
           "hinge",
           "huber",
           "identity",
           "init",
           "kldivergence",
           "leakyrelu",
           "load",
           "logitbinarycrossentropy",
           "logitcrossentropy",
           "logsigmoid",
           "logsoftmax",
           "mae",
           "mish",
           "models",
           "mse",
           "onecold",
           "onehot",
           "relu",
           "relu6",
           "reset",
           "save",
           "schedules",
           "selu",
           "sigmoid",
           "softmax",
           "softplus",
           "softsign",
           "state_dict",
           "static",
           "swish",
           "tanh",
           "testmode",
           "thaw",
           "to_device",
           "train",
           "train_step",
           "trainmode",
           "withgradient",
]
