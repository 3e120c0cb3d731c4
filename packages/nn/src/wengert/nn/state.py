"""Updating non-trainable state (`Buffer`s) from inside a training step.

A layer in training mode computes its new state (running statistics, the
last RNN carry) and hands it to `record`. Outside any transformation the
value is concrete and is stored at once. Inside a gradient the value is
traced; `withgradient` returns the recorded values as extra (constant)
outputs of the differentiated function, so they come back concrete, and
stores them when the step is over. A bare `ad.gradient` computes gradients
only and leaves the state untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from wengert import ad

from .core import Buffer, is_array

__all__ = ["record", "withgradient"]

_recorders: list[list[tuple[Buffer, Any]]] = []


def record(buffer: Buffer, value: Any) -> None:
    """Set ``buffer`` to ``value`` when this step's state is committed."""
    if all(is_array(leaf) for leaf in ad.tree_leaves(value)):
        buffer.value = value
    elif _recorders:
        _recorders[-1].append((buffer, ad.stop_gradient(value)))


def withgradient(f: Callable[..., Any], *args: Any) -> tuple[Any, tuple]:
    """``(f(*args), gradients)`` as Flux's ``withgradient``; state recorded by
    layers in training mode during ``f`` is committed afterwards."""
    pending: list[tuple[Buffer, Any]] = []

    def with_state(*xs: Any) -> tuple[Any, list]:
        value = f(*xs)
        return value, [v for _, v in pending]

    _recorders.append(pending)
    try:
        (value, new_state), back = ad.pullback(with_state, *args)
    finally:
        _recorders.pop()
    seed = np.ones_like(value) if hasattr(value, "shape") else type(value)(1)
    grads = back((seed, [ad.tree_map(np.zeros_like, s) for s in new_state]))
    for (buffer, _), v in zip(pending, new_state):
        buffer.value = v
    return value, grads
