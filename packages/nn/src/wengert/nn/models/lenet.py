"""LeNet-5 (LeCun et al. 1998), with ReLU and max pooling as in Flux's model zoo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..activations import relu
from ..layers import Chain, Conv, Dense, Flatten, MaxPool


def LeNet5(imsize: Sequence[int] = (28, 28, 1), nclasses: int = 10, *, rng: Any = None,
           dtype: Any = np.float32) -> Chain:
    """For ``(H, W, C)`` images: two 5x5 convolutions (6 and 16 maps) each
    followed by 2x2 pooling, then Dense 120, 84, ``nclasses`` (logits)."""
    h, w, c = imsize
    side = [((n - 4) // 2 - 4) // 2 for n in (h, w)]
    kw = dict(rng=rng, dtype=dtype)
    return Chain(
        Conv((5, 5), c, 6, relu, **kw), MaxPool((2, 2)),
        Conv((5, 5), 6, 16, relu, **kw), MaxPool((2, 2)),
        Flatten(),
        Dense(16 * side[0] * side[1], 120, relu, **kw),
        Dense(120, 84, relu, **kw),
        Dense(84, nclasses, **kw))
