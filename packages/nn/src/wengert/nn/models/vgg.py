"""VGG (Simonyan & Zisserman 2015): stacks of 3x3 convolutions and 2x2 max
pooling, then three dense layers. VGG-19 at 224x224x3 -> 1000 has 16
convolutions, 3 dense layers and 143,667,240 parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..activations import relu
from ..layers import BatchNorm, Chain, Conv, Dense, Dropout, Flatten, MaxPool

_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}


def VGG(depth: int, *, batchnorm: bool = False, imsize: Sequence[int] = (224, 224, 3),
        nclasses: int = 1000, dropout: float = 0.5, hidden: int = 4096, rng: Any = None,
        dtype: Any = np.float32) -> Chain:
    """``Chain(features=..., classifier=...)``; the classifier's first layer
    takes ``512 * (H/32) * (W/32)`` inputs; its two hidden layers have
    ``hidden`` units (4096 in the paper; smaller for small images)."""
    kw = dict(rng=rng, dtype=dtype)
    h, w, channels = imsize
    features = []
    for v in _CONFIGS[depth]:
        if v == "M":
            features.append(MaxPool((2, 2)))
        elif batchnorm:
            features += [Conv((3, 3), channels, v, pad=1, **kw), BatchNorm(v, relu, dtype=dtype)]
        else:
            features.append(Conv((3, 3), channels, v, relu, pad=1, **kw))
        channels = v if v != "M" else channels
    flat = 512 * (h // 32) * (w // 32)
    classifier = Chain(
        Flatten(),
        Dense(flat, hidden, relu, **kw), Dropout(dropout, rng=rng),
        Dense(hidden, hidden, relu, **kw), Dropout(dropout, rng=rng),
        Dense(hidden, nclasses, **kw))
    return Chain(features=Chain(*features), classifier=classifier)


def VGG11(**kwargs: Any) -> Chain:
    return VGG(11, **kwargs)


def VGG16(**kwargs: Any) -> Chain:
    return VGG(16, **kwargs)


def VGG19(**kwargs: Any) -> Chain:
    return VGG(19, **kwargs)
