"""Every layer of `wengert.nn`, one concept per module."""

from .containers import Chain, Maxout, Parallel, SkipConnection
from .conv import Conv, ConvTranspose, DepthwiseConv
from .dense import Bilinear, Dense, Embedding
from .dropout import Dropout
from .norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from .pool import AdaptiveMeanPool, GlobalMaxPool, GlobalMeanPool, MaxPool, MeanPool
from .shape import Flatten, Upsample

__all__ = ["AdaptiveMeanPool", "BatchNorm", "Bilinear", "Chain", "Conv", "ConvTranspose",
           "DepthwiseConv", "Dense", "Dropout", "Embedding", "Flatten", "GlobalMaxPool",
           "GlobalMeanPool", "GroupNorm", "InstanceNorm", "LayerNorm", "MaxPool", "Maxout",
           "MeanPool", "Parallel", "SkipConnection", "Upsample"]
