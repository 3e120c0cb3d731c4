"""Loss functions ``loss(ŷ, y)``, averaged over the batch by default
(``agg=wnp.mean``; pass ``agg=wnp.sum`` or any reduction). Class scores are on
the last axis (channels-last). Targets are one-hot or probabilities shaped like
``ŷ`` (anything else is refused: broadcasting a ``(N,)`` label vector against
``(N, N)`` scores would give a wrong number, not an error); `cross_entropy`
takes integer class labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp

from .activations import logsoftmax, softplus

__all__ = ["binarycrossentropy", "cross_entropy", "crossentropy", "hinge", "huber", "kldivergence",
           "logitbinarycrossentropy", "logitcrossentropy", "mae", "mse"]

Array = Any
Agg = Callable[[Array], Array]


def _xlogy(x: Array, y: Array) -> Array:
    """x * log(y), defined as 0 where x == 0."""
    return wnp.where(x == 0, 0.0, x * wnp.log(wnp.where(x == 0, 1.0, y)))


def _same_shape(ŷ: Array, y: Array, loss: str) -> None:
    """Targets must be shaped like the predictions (Flux's rule)."""
    have, want = wnp.shape(y), wnp.shape(ŷ)
    if have == want:
        return
    hint = ""
    if len(have) == len(want) - 1 and have == want[:-1]:
        hint = (f"; for integer class labels use nn.cross_entropy(ŷ, labels), or "
                f"nn.onehot(labels, {want[-1]}) for one-hot targets")
    raise ValueError(f"{loss}: the target has shape {have} but the prediction {want}; "
                     f"targets must have the prediction's shape{hint}")


def _broadcasts_into(ŷ: Array, y: Array, loss: str) -> None:
    """A target may broadcast against the prediction (a scalar, a row), but not
    enlarge it: ``(N, 1)`` outputs against ``(N,)`` targets would give ``(N, N)``."""
    want = wnp.shape(ŷ)
    try:
        ok = np.broadcast_shapes(want, wnp.shape(y)) == want
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{loss}: the target has shape {wnp.shape(y)}, which does not "
                         f"broadcast to the prediction's {want} without enlarging it; reshape "
                         "the target (e.g. y[:, None]) or the prediction")


def mse(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    _broadcasts_into(ŷ, y, "mse")
    d = ŷ - y
    return agg(d * d)


def mae(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    _broadcasts_into(ŷ, y, "mae")
    return agg(wnp.abs(ŷ - y))


def huber(ŷ: Array, y: Array, delta: float = 1.0, agg: Agg = wnp.mean) -> Array:
    """Quadratic within ``delta``, linear beyond (PyTorch's ``huber_loss``)."""
    _broadcasts_into(ŷ, y, "huber")
    a = wnp.abs(ŷ - y)
    return agg(wnp.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta)))


def crossentropy(ŷ: Array, y: Array, axis: int = -1, eps: float = 1e-7,
                 agg: Agg = wnp.mean) -> Array:
    """Cross-entropy of probabilities ``ŷ`` (e.g. softmax outputs), summed over classes."""
    _same_shape(ŷ, y, "crossentropy")
    return agg(-wnp.sum(_xlogy(y, ŷ + eps), axis=axis))


def logitcrossentropy(ŷ: Array, y: Array, axis: int = -1, agg: Agg = wnp.mean) -> Array:
    """Cross-entropy of logits: ``crossentropy(softmax(ŷ), y)``, stably, for
    one-hot or probability targets ``y`` shaped like ``ŷ``."""
    _same_shape(ŷ, y, "logitcrossentropy")
    return agg(-wnp.sum(y * logsoftmax(ŷ, axis=axis), axis=axis))


def cross_entropy(ŷ: Array, labels: Array, axis: int = -1, agg: Agg = wnp.mean) -> Array:
    """PyTorch's ``cross_entropy``: logits ``ŷ`` and integer class ``labels``
    (shape ``ŷ`` without the class axis), ``-logsoftmax(ŷ)[label]``
    averaged. The class axis is the last one (channels-last), not PyTorch's 1."""
    labels = np.asarray(labels)
    shape = wnp.shape(ŷ)
    axis = axis % len(shape)
    classes = shape[axis]
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got {labels.dtype}; for "
                        "one-hot or probability targets use nn.logitcrossentropy")
    if labels.shape != shape[:axis] + shape[axis + 1:]:
        raise ValueError(f"cross_entropy: labels have shape {labels.shape} but logits "
                         f"{shape} need {shape[:axis] + shape[axis + 1:]} (one label per "
                         "sample, no class axis)")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"cross_entropy: labels must lie in [0, {classes}), got "
                         f"{labels.min()}..{labels.max()}")
    chosen = np.expand_dims(labels, axis) == np.arange(classes).reshape(
        (classes,) + (1,) * (len(shape) - 1 - axis))
    return agg(-wnp.sum(wnp.where(chosen, logsoftmax(ŷ, axis=axis), 0), axis=axis))


def binarycrossentropy(ŷ: Array, y: Array, eps: float = 1e-7, agg: Agg = wnp.mean, *,
                       clamp_log: float | None = None) -> Array:
    """Binary cross-entropy of probabilities. By default Flux's form, with
    ``eps`` added inside the logs; ``clamp_log=-100`` gives PyTorch's
    ``binary_cross_entropy`` (no ``eps``, each log clamped below at -100)."""
    _broadcasts_into(ŷ, y, "binarycrossentropy")
    if clamp_log is None:
        return agg(-_xlogy(y, ŷ + eps) - _xlogy(1 - y, 1 - ŷ + eps))
    with np.errstate(divide="ignore"):  # log(0) = -inf is clamped, as in PyTorch
        log_p = wnp.maximum(wnp.log(ŷ), clamp_log)
        log_q = wnp.maximum(wnp.log(1 - ŷ), clamp_log)
    return agg(-(y * log_p + (1 - y) * log_q))


def logitbinarycrossentropy(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    """``binarycrossentropy(sigmoid(ŷ), y)`` without overflow."""
    _broadcasts_into(ŷ, y, "logitbinarycrossentropy")
    return agg((1 - y) * ŷ + softplus(-ŷ))


def kldivergence(ŷ: Array, y: Array, axis: int = -1, eps: float = 1e-7,
                 agg: Agg = wnp.mean) -> Array:
    """KL(y || ŷ) for probability vectors on ``axis``."""
    _same_shape(ŷ, y, "kldivergence")
    return agg(wnp.sum(_xlogy(y, y) - _xlogy(y, ŷ + eps), axis=axis))


def hinge(ŷ: Array, y: Array, agg: Agg = wnp.mean) -> Array:
    """For labels ``y`` in {-1, 1}."""
    _broadcasts_into(ŷ, y, "hinge")
    return agg(wnp.maximum(0, 1 - ŷ * y))
