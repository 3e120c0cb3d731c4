"""Multi-layer perceptron."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..activations import identity, relu
from ..layers import Chain, Dense


def MLP(sizes: Sequence[int], σ: Callable = relu, *, final: Callable = identity,
        rng: Any = None, dtype: Any = np.float32) -> Chain:
    """Dense layers ``sizes[0] => sizes[1] => ...``, ``σ`` between them, ``final`` at the end."""
    pairs = list(itertools.pairwise(sizes))
    return Chain(*(Dense(a, b, σ if i < len(pairs) - 1 else final, rng=rng, dtype=dtype)
                   for i, (a, b) in enumerate(pairs)))
