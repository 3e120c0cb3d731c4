"""Loss functions ``loss(ŷ, y)``, averaged over the batch by default
(``agg=wnp.mean``; pass ``agg=wnp.sum`` or any reduction). Class scores are on
the last axis (channels-last), targets are one-hot or probabilities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wengert.ad.numpy as wnp

from .activations import logsoftmax, softplus

__all__ = ["binarycrossentropy", "crossentropy", "hinge", "huber", "kldivergence",
           "logitbinarycrossentropy", "logitcrossentropy", "mae", "mse"]

Array = Any
Agg = Callable[[Array], Array]


def _xlogy(x: Array, y: Array) -> Array:
    """x * log(y), defined as 0 where x == 0."""
    return wnp.where(x == 0, 0.0, x * wnp.log(wnp.where(x == 0, 1.0, y)))


def mse(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    d = ŷ - y
    return agg(d * d)


def mae(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    return agg(wnp.abs(ŷ - y))


def huber(ŷ: Array, y: Array, delta: float = 1.0, agg: Agg = wnp.mean) -> Array:
    """Quadratic within ``delta``, linear beyond (PyTorch's ``huber_loss``)."""
    a = wnp.abs(ŷ - y)
    return agg(wnp.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta)))


def crossentropy(ŷ: Array, y: Array, axis: int = -1, eps: float = 1e-7,
                 agg: Agg = wnp.mean) -> Array:
    """Cross-entropy of probabilities ``ŷ`` (e.g. softmax outputs), summed over classes."""
    return agg(-wnp.sum(_xlogy(y, ŷ + eps), axis=axis))


def logitcrossentropy(ŷ: Array, y: Array, axis: int = -1, agg: Agg = wnp.mean) -> Array:
    """Cross-entropy of logits: ``crossentropy(softmax(ŷ), y)``, stably."""
    return agg(-wnp.sum(y * logsoftmax(ŷ, axis=axis), axis=axis))


def binarycrossentropy(ŷ: Array, y: Array, eps: float = 1e-7, agg: Agg = wnp.mean) -> Array:
    return agg(-_xlogy(y, ŷ + eps) - _xlogy(1 - y, 1 - ŷ + eps))


def logitbinarycrossentropy(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    """``binarycrossentropy(sigmoid(ŷ), y)`` without overflow."""
    return agg((1 - y) * ŷ + softplus(-ŷ))


def kldivergence(ŷ: Array, y: Array, axis: int = -1, eps: float = 1e-7,
                 agg: Agg = wnp.mean) -> Array:
    """KL(y || ŷ) for probability vectors on ``axis``."""
    return agg(wnp.sum(_xlogy(y, y) - _xlogy(y, ŷ + eps), axis=axis))


def hinge(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    """For labels ``y`` in {-1, 1}."""
    return agg(wnp.maximum(0, 1 - ŷ * y))
