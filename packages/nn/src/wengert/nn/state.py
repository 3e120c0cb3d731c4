"""Updating non-trainable state (`Buffer`s) from inside a training step.

A layer in training mode reads its state with `current` and hands the new
state to `record`. Outside any transformation the value is concrete and is
stored at once. Inside a gradient the value is traced; `pullback` (and
`withgradient`, built on it) returns the recorded values as extra
(constant) outputs of the differentiated function, so they come back
concrete, and stores them when the forward pass is over. A layer called
twice in one step (a discriminator on real, then fake data) reads the value
recorded by its first call, so both updates apply, as they do eagerly. A bare `ad.gradient` computes gradients only: the
state is left untouched, and a `StateNotUpdatedWarning` says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from wengert import ad

from .core import Buffer, is_array

__all__ = ["StateNotUpdatedWarning", "current", "pullback", "record", "withgradient"]

#: One dict per open `withgradient`: the state cell -> its new (traced) value.
_recorders: list[dict[Buffer, Any]] = []


class StateNotUpdatedWarning(UserWarning):
    """A layer's state (BatchNorm statistics, a stateful RNN's carry) was
    computed inside a transformation that does not commit it."""


def current(buffer: Buffer) -> Any:
    """The buffer's value as this step sees it: what an earlier call in the
    same `withgradient` step recorded, else the stored value (never
    differentiated)."""
    if _recorders:
        pending = _recorders[-1].get(buffer.cell)
        if pending is not None:
            return pending
    value = buffer.value
    return value if value is None or is_array(value) else ad.tree_map(ad.stop_gradient, value)


def record(buffer: Buffer, value: Any, owner: str = "a layer") -> None:
    """Set ``buffer`` to ``value`` when this step's state is committed."""
    cell = buffer.cell
    if all(is_array(leaf) for leaf in ad.tree_leaves(value)):
        cell.value = value
    elif _recorders:
        _recorders[-1][cell] = ad.tree_map(ad.stop_gradient, value)
    else:
        warnings.warn(
            f"{owner} computed new state inside ad.gradient/ad.pullback (or while staged), "
            "which only compute gradients: the state is not updated. Take training steps "
            "with nn.withgradient(f, model) or nn.train, which commit it",
            StateNotUpdatedWarning, stacklevel=3)


def pullback(f: Callable[..., Any], *args: Any) -> tuple[Any, Callable[[Any], tuple]]:
    """``(f(*args), back)`` as Zygote's ``pullback``: ``back(dy)`` gives one
    cotangent per argument, and state recorded by layers in training mode
    during ``f`` is committed as soon as the forward pass is done. A GAN step
    written as PyTorch writes it needs this: the generator's output trains the
    discriminator first, and the generator's gradient is pulled back from the
    same forward pass afterwards (one forward, one BatchNorm update)."""
    pending: dict[Buffer, Any] = {}

    def with_state(*xs: Any) -> tuple[Any, list]:
        value = f(*xs)
        return value, list(pending.values())

    _recorders.append(pending)
    try:
        (value, new_state), back = ad.pullback(with_state, *args)
    finally:
        _recorders.pop()
    for cell, v in zip(pending, new_state):
        if all(is_array(leaf) for leaf in ad.tree_leaves(v)):
            cell.value = v
        else:  # staged (inside a compiler): the new state exists only as a symbol
            warnings.warn("nn.withgradient/nn.pullback was staged (e.g. inside xla.jit): layer "
                          "state cannot be committed there; return it from the compiled "
                          "function instead", StateNotUpdatedWarning, stacklevel=3)
    no_state = [ad.tree_map(np.zeros_like, s) for s in new_state]
    return value, lambda dy: back((dy, no_state))


def withgradient(f: Callable[..., Any], *args: Any) -> tuple[Any, tuple]:
    """``(f(*args), gradients)`` as Flux's ``withgradient``; state recorded by
    layers in training mode during ``f`` is committed."""
    value, back = pullback(f, *args)
    seed = np.ones_like(value) if hasattr(value, "shape") else type(value)(1)
    return value, back(seed)
