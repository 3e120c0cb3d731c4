"""ResNet (He et al. 2016) with basic residual blocks: ResNet-18 and -34."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..activations import relu
from ..layers import (
    BatchNorm,
    Chain,
    Conv,
    Dense,
    Flatten,
    GlobalMeanPool,
    MaxPool,
    Parallel,
    SkipConnection,
)


def _block(n_in: int, n_out: int, stride: int, rng: Any, dtype: Any) -> Chain:
    kw = dict(bias=False, rng=rng, dtype=dtype)
    main = Chain(Conv((3, 3), n_in, n_out, stride=stride, pad=1, **kw),
                 BatchNorm(n_out, relu, dtype=dtype),
                 Conv((3, 3), n_out, n_out, pad=1, **kw),
                 BatchNorm(n_out, dtype=dtype))
    if stride == 1 and n_in == n_out:
        residual = SkipConnection(main, operator.add)
    else:
        shortcut = Chain(Conv((1, 1), n_in, n_out, stride=stride, **kw),
                         BatchNorm(n_out, dtype=dtype))
        residual = Parallel(operator.add, main, shortcut)
    return Chain(residual, relu)


def ResNet(blocks: Sequence[int], *, imsize: Sequence[int] = (224, 224, 3),
           nclasses: int = 1000, rng: Any = None, dtype: Any = np.float32) -> Chain:
    """Stem (7x7/2 conv, BatchNorm, 3x3/2 max pool), four stages of basic
    blocks with 64-128-256-512 channels, global mean pooling, a dense head."""
    stem = Chain(Conv((7, 7), imsize[-1], 64, stride=2, pad=3, bias=False, rng=rng, dtype=dtype),
                 BatchNorm(64, relu, dtype=dtype), MaxPool((3, 3), stride=2, pad=1))
    stages, n_in = [], 64
    for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for j in range(n):
            stages.append(_block(n_in, width, 2 if i > 0 and j == 0 else 1, rng, dtype))
            n_in = width
    head = Chain(GlobalMeanPool(), Flatten(), Dense(512, nclasses, rng=rng, dtype=dtype))
    return Chain(stem=stem, stages=Chain(*stages), head=head)


def ResNet18(**kwargs: Any) -> Chain:
    return ResNet((2, 2, 2, 2), **kwargs)


def ResNet34(**kwargs: Any) -> Chain:
    return ResNet((3, 4, 6, 3), **kwargs)
