"""Array creation. Constants are plain arrays; ``array`` of a list holding
traced values stacks them, so it is differentiable."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import Tracer
from ..primitives import elementwise as ew
from ..primitives._helpers import is_cupy, on_device_of
from ._common import as_array, shape_of


def array(obj: Any, dtype: Any = None) -> Any:
    out = as_array(obj)
    if isinstance(out, Tracer):
        return out if dtype is None else astype(out, dtype)
    if is_cupy(out):
        return out.astype(out.dtype if dtype is None else dtype)  # a copy, as np.array
    return np.array(out, dtype=dtype)


def asarray(obj: Any, dtype: Any = None) -> Any:
    out = as_array(obj)
    if dtype is not None and np.dtype(dtype) != out.dtype:
        return astype(out, dtype)
    return out


def astype(x: Any, dtype: Any) -> Any:
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return ew.convert_element_type_p.bind(x, new_dtype=dtype)


def _dtype_of(x: Any, dtype: Any) -> Any:
    return np.dtype(dtype) if dtype is not None else x.dtype


def zeros_like(x: Any, dtype: Any = None) -> Any:
    return full_like(x, 0, dtype)


def ones_like(x: Any, dtype: Any = None) -> Any:
    return full_like(x, 1, dtype)


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Any:
    """A constant on ``x``'s device (differentiable in a traced ``fill_value``)."""
    if isinstance(fill_value, Tracer) or is_cupy(fill_value):
        return full(shape_of(x), fill_value, _dtype_of(x, dtype))
    if isinstance(x, Tracer):
        return on_device_of(x, np.full(x.shape, fill_value, _dtype_of(x, dtype)))
    return np.full_like(x, fill_value, dtype=dtype)


def zeros(shape: Any, dtype: Any = float) -> np.ndarray:
    return np.zeros(shape, dtype)


def ones(shape: Any, dtype: Any = float) -> np.ndarray:
    return np.ones(shape, dtype)


def empty(shape: Any, dtype: Any = float) -> np.ndarray:
    return np.zeros(shape, dtype)


def empty_like(x: Any, dtype: Any = None) -> Any:
    return zeros_like(x, dtype)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Any:
    if isinstance(fill_value, Tracer) or is_cupy(fill_value):
        from ._shape import broadcast_to

        fill_value = fill_value if dtype is None else astype(fill_value, dtype)
        return broadcast_to(fill_value, shape)
    return np.full(shape, fill_value, dtype)


def eye(n: int, m: int | None = None, k: int = 0, dtype: Any = float) -> np.ndarray:
    return np.eye(n, m, k, dtype=dtype)


def identity(n: int, dtype: Any = float) -> np.ndarray:
    return np.identity(n, dtype=dtype)


def arange(*args: Any, **kwargs: Any) -> np.ndarray:
    return np.arange(*args, **kwargs)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             dtype: Any = None) -> Any:
    """Differentiable in ``start`` and ``stop``."""
    special = [v for v in (start, stop) if isinstance(v, Tracer) or is_cupy(v)]
    if not special:
        return np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype)
    div = (num - 1) if endpoint else num
    steps = on_device_of(special[0], np.arange(num, dtype=float) / max(div, 1))
    out = start + (stop - start) * steps
    return out if dtype is None else astype(out, dtype)


def shape(x: Any) -> tuple[int, ...]:
    return shape_of(x)


def ndim(x: Any) -> int:
    return len(shape_of(x))


def size(x: Any) -> int:
    return int(np.prod(shape_of(x), dtype=np.int64))


def result_type(*xs: Any) -> np.dtype:
    return np.result_type(*(x.dtype if isinstance(x, Tracer) else x for x in xs))


def iscomplexobj(x: Any) -> bool:
    return np.dtype(x.dtype if isinstance(x, Tracer) else np.result_type(x)).kind == "c"


def isrealobj(x: Any) -> bool:
    return not iscomplexobj(x)


def iscomplex(x: Any) -> Any:
    """Elementwise: a nonzero imaginary part (a boolean array, no derivative)."""
    from ._elementwise import imag, not_equal

    if not iscomplexobj(x):
        return zeros(shape_of(x), bool)
    return not_equal(imag(x), 0)


def isreal(x: Any) -> Any:
    from ._elementwise import logical_not

    return logical_not(iscomplex(x))
