"""Activation functions: plain functions of arrays, differentiable through
`wengert.ad.numpy` (so they run at NumPy speed on plain arrays)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import wengert.ad.numpy as wnp
from wengert import ad
from wengert.ad.scipy.special import expit

__all__ = ["celu", "elu", "gelu", "hardsigmoid", "hardtanh", "identity", "leakyrelu",
           "logsigmoid", "logsoftmax", "mish", "relu", "relu6", "selu", "sigmoid", "softmax",
           "softplus", "softsign", "swish", "tanh"]

Array = Any


def identity(x: Array) -> Array:
    return x


@ad.adjoint
def relu(x: Array) -> Array:
    """``maximum(x, 0)`` forward (NaN propagates, as in PyTorch, and XLA sees a
    ``max`` it can fuse into a convolution); the pullback is one masked copy
    with derivative 0 at 0 (as PyTorch), not ``maximum``'s tie-splitting rule."""
    return wnp.maximum(x, 0), lambda g: (wnp.where(x > 0, g, 0),)


def relu6(x: Array) -> Array:
    return wnp.clip(x, 0, 6)


def _parametrised(f: Callable[..., Array]) -> Callable[..., Any]:
    """Let ``f(α)`` with a Python number (no array) return the activation with
    that parameter, ``x -> f(x, α)``, as PyTorch's ``nn.LeakyReLU(0.2)``; it
    prints as ``f(α)``. ``f(x)`` and ``f(x, α)`` apply it directly."""
    @functools.wraps(f)
    def wrapper(x: Any, *args: Any, **kwargs: Any) -> Any:
        if type(x) in (float, int) and not args and not kwargs:
            def activation(y: Array) -> Array:
                return f(y, x)

            activation.__name__ = activation.__qualname__ = f"{f.__name__}({x})"
            return activation
        return f(x, *args, **kwargs)

    return wrapper


@_parametrised
def leakyrelu(x: Array, a: float = 0.01) -> Array:
    """``x`` where positive, ``a x`` elsewhere; ``nn.leakyrelu(0.2)`` is the
    activation with ``a = 0.2``."""
    return _leakyrelu(x, a)


@ad.adjoint
def _leakyrelu(x: Array, a: float) -> Array:
    """One adjoint, as `relu`: the pullback is one masked select of ``g`` and ``a g``
    (the select's own rule would send two masked cotangents back and add them);
    ``a`` gets no gradient (a hyperparameter)."""
    positive = x > 0
    return wnp.where(positive, x, a * x), lambda g: (wnp.where(positive, g, a * g), None)


@_parametrised
def elu(x: Array, alpha: float = 1.0) -> Array:
    """``nn.elu(α)`` is the activation with that ``alpha``."""
    return wnp.where(x > 0, x, alpha * wnp.expm1(wnp.minimum(x, 0)))


@_parametrised
def celu(x: Array, alpha: float = 1.0) -> Array:
    """``nn.celu(α)`` is the activation with that ``alpha``."""
    return wnp.maximum(x, 0) + wnp.minimum(alpha * wnp.expm1(wnp.minimum(x, 0) / alpha), 0)


def selu(x: Array) -> Array:
    return 1.0507009873554805 * elu(x, 1.6732632423543772)


def sigmoid(x: Array) -> Array:
    """The logistic primitive (``1 / (1 + exp(-x))``): accurate in both tails
    (``sigmoid(-20)`` is 2.06e-9 in float32, not the 0 of ``0.5 tanh(x/2) + 0.5``)."""
    return expit(x)


def tanh(x: Array) -> Array:
    return wnp.tanh(x)


@ad.adjoint
def softplus(x: Array) -> Array:
    """log(1 + exp(x)) without overflow, as ``max(x, 0) + log1p(exp(-|x|))`` (one
    exp and one log1p; `logaddexp` evaluates both of its branches) with its own
    pullback ``g sigmoid(x)``: smooth at 0, where that form has a kink, and one
    logistic pass instead of differentiating the composition in the backward
    sweep of every logit cross-entropy."""
    y = wnp.maximum(x, 0) + wnp.log1p(wnp.exp(-wnp.abs(x)))
    return y, lambda g: (g * sigmoid(x),)


def logsigmoid(x: Array) -> Array:
    return -softplus(-x)


def softsign(x: Array) -> Array:
    return x / (1 + wnp.abs(x))


def hardtanh(x: Array) -> Array:
    return wnp.clip(x, -1, 1)


def hardsigmoid(x: Array) -> Array:
    """PyTorch's piecewise-linear sigmoid: relu6(x + 3) / 6."""
    return relu6(x + 3) / 6


def swish(x: Array) -> Array:
    return x * sigmoid(x)


def mish(x: Array) -> Array:
    return x * wnp.tanh(softplus(x))


_SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))


def gelu(x: Array) -> Array:
    """The tanh approximation (Flux's ``gelu``; PyTorch's ``approximate='tanh'``)."""
    return 0.5 * x * (1 + wnp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def softmax(x: Array, axis: int = -1) -> Array:
    e = wnp.exp(x - _stop_max(x, axis))
    return e / wnp.sum(e, axis=axis, keepdims=True)


def logsoftmax(x: Array, axis: int = -1) -> Array:
    return _logsoftmax_along(tuple(axis) if isinstance(axis, list) else axis)(x)


@functools.cache
def _logsoftmax_along(axis: Any) -> Callable[[Array], Array]:
    """`logsoftmax` over ``axis`` with its own pullback ``g - softmax(x) Σg``: one
    tape entry, where the composition tapes nine primitives (every classifier's
    loss goes through it), and on plain arrays NumPy's own functions. NumPy's
    functions dispatch traced values to `wengert.ad.numpy`, so it is still
    differentiable twice."""
    @ad.adjoint
    def logsoftmax_(x: Array) -> tuple[Array, Callable]:
        shifted = x - ad.stop_gradient(np.max(x, axis=axis, keepdims=True))
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        return y, lambda g: (g - np.exp(y) * np.sum(g, axis=axis, keepdims=True),)

    return logsoftmax_


def _stop_max(x: Array, axis: int) -> Array:
    # The shift cancels mathematically, so it needs no derivative.
    from wengert import ad

    return ad.stop_gradient(wnp.max(x, axis=axis, keepdims=True))
