"""Small argument-normalising helpers shared by the namespace modules."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import Tracer
from ..primitives._helpers import is_cupy


def shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tracer) else np.shape(x)


def normalize_axis(axis: int, ndim: int, where: str = "axis") -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise np.exceptions.AxisError(f"{where} {axis} is out of bounds for an array of "
                                      f"dimension {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``None`` -> all axes; an int or a tuple -> sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = tuple(sorted(normalize_axis(int(a), ndim) for a in axis))
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return out


def as_array(x: Any) -> Any:
    """Tracers and arrays pass through; lists and scalars become numpy arrays.

    Lists that hold tracers are stacked, so ``array([x, 2 * x])`` is
    differentiable.
    """
    if isinstance(x, Tracer) or hasattr(x, "__array_namespace__") or is_cupy(x):
        return x
    if isinstance(x, (list, tuple)) and _needs_stacking(x):
        from ._shape import stack

        return stack([as_array(e) for e in x])
    return np.asarray(x)


def _needs_stacking(x: Any) -> bool:
    """Holds tracers or CuPy arrays, which NumPy cannot gather into an array."""
    if isinstance(x, Tracer) or is_cupy(x):
        return True
    if isinstance(x, (list, tuple)):
        return any(_needs_stacking(e) for e in x)
    return False
