"""Every layer of `wengert.nn`, one concept per module."""

from .attention import MultiHeadAttention, causal_mask
from .containers import Chain, Maxout, Parallel, SkipConnection
from .conv import Conv, ConvTranspose, DepthwiseConv
from .dense import Bilinear, Dense, Embedding
from .dropout import Dropout
from .norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from .pool import AdaptiveMeanPool, GlobalMaxPool, GlobalMeanPool, MaxPool, MeanPool
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, Recurrence, RNNCell, reset
from .shape import Flatten, Upsample

__all__ = [
           "GRU",
           "LSTM",
           "RNN",
           "AdaptiveMeanPool",
           "BatchNorm",
           "Bilinear",
           "Chain",
           "Conv",
           "ConvTranspose",
           "Dense",
           "DepthwiseConv",
           "Dropout",
           "Embedding",
           "Flatten",
           "GRUCell",
           "GlobalMaxPool",
           "GlobalMeanPool",
           "GroupNorm",
           "InstanceNorm",
           "LSTMCell",
           "LayerNorm",
           "MaxPool",
           "Maxout",
           "MeanPool",
           "MultiHeadAttention",
           "Parallel",
           "RNNCell",
           "Recurrence",
           "SkipConnection",
           "Upsample",
           "causal_mask",
           "reset",
]
