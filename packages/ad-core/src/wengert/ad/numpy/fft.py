"""Differentiable `numpy.fft`: ``fft``, ``ifft``, ``rfft``, ``irfft``, their
2-d and n-d forms, ``fftshift``/``ifftshift``, and NumPy's ``fftfreq``/``rfftfreq``.

Each transform moves its axes last, crops or zero-pads them to the requested
lengths, applies the one `fft` primitive and rescales for ``norm``
("backward", "ortho" or "forward", as NumPy).
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
from numpy.fft import fftfreq, rfftfreq

from ..primitives.fft import fft_p
from ._common import as_array, normalize_axis, shape_of
from ._creation import astype
from ._shape import moveaxis, pad, roll

_INVERSE = {"ifft", "irfft"}


def _scale(kind: str, norm: str | None, n: int) -> float:
    if norm in (None, "backward"):
        return 1.0
    if norm == "ortho":
        return float(np.sqrt(n)) if kind in _INVERSE else 1 / float(np.sqrt(n))
    if norm == "forward":
        return float(n) if kind in _INVERSE else 1 / n
    raise ValueError(f'norm must be "backward", "ortho" or "forward", got {norm!r}')


def _resize_last(x: Any, lengths: tuple[int, ...]) -> Any:
    """Crop or zero-pad the trailing axes of ``x`` to ``lengths``."""
    k = len(lengths)
    have = shape_of(x)[-k:]
    if have == tuple(lengths):
        return x
    crop = (Ellipsis,) + tuple(slice(0, builtins.min(h, n)) for h, n in zip(have, lengths))
    x = x[crop]
    widths = [(0, 0)] * (x.ndim - k) + [(0, builtins.max(n - h, 0)) for h, n in
                                         zip(have, lengths)]
    return pad(x, widths) if builtins.any(w for _, w in widths) else x


def _transform(kind: str, a: Any, s: Any, axes: Any, norm: str | None) -> Any:
    a = as_array(a)
    if axes is None:
        axes = tuple(range(-len(s), 0)) if s is not None else tuple(range(a.ndim))
    axes = tuple(normalize_axis(int(ax), a.ndim) for ax in axes)
    if s is None:
        s = tuple(shape_of(a)[ax] for ax in axes)
        if kind == "irfft":
            s = s[:-1] + (2 * (s[-1] - 1),)
    s = tuple(int(n) for n in s)
    if len(s) != len(axes):
        raise ValueError(f"{kind}: s {s} and axes {axes} must have the same length")
    last = tuple(range(a.ndim - len(axes), a.ndim))
    x = moveaxis(a, axes, last)
    if kind == "rfft":
        if x.dtype.kind == "c":
            raise TypeError("rfft: the input must be real; use fft for complex input")
        x = astype(x, np.result_type(x.dtype, np.float32))
        x = _resize_last(x, s)
    else:
        x = astype(x, np.result_type(x.dtype, np.complex64))
        x = _resize_last(x, s[:-1] + (s[-1] // 2 + 1,) if kind == "irfft" else s)
    y = fft_p.bind(x, fft_type=kind, fft_lengths=s)
    factor = _scale(kind, norm, int(np.prod(s, dtype=np.int64)))
    if factor != 1.0:
        y = y * factor
    return moveaxis(y, last, axes)


def _one_axis(n: int | None, axis: int) -> tuple[Any, tuple[int]]:
    return (None if n is None else (n,)), (axis,)


def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    return _transform("fft", a, *_one_axis(n, axis), norm)


def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    return _transform("ifft", a, *_one_axis(n, axis), norm)


def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    return _transform("rfft", a, *_one_axis(n, axis), norm)


def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    return _transform("irfft", a, *_one_axis(n, axis), norm)


def fftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    return _transform("fft", a, s, axes, norm)


def ifftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    return _transform("ifft", a, s, axes, norm)


def rfftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    return _transform("rfft", a, s, axes, norm)


def irfftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    return _transform("irfft", a, s, axes, norm)


def fft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    return _transform("fft", a, s, axes, norm)


def ifft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    return _transform("ifft", a, s, axes, norm)


def rfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    return _transform("rfft", a, s, axes, norm)


def irfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    return _transform("irfft", a, s, axes, norm)


def _shift(x: Any, axes: Any, sign: int) -> Any:
    x = as_array(x)
    axes = tuple(range(x.ndim)) if axes is None else (
        (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes))
    shifts = tuple(sign * (shape_of(x)[ax] // 2) for ax in axes)
    return roll(x, shifts, axes)


def fftshift(x: Any, axes: Any = None) -> Any:
    """Zero frequency to the centre."""
    return _shift(x, axes, 1)


def ifftshift(x: Any, axes: Any = None) -> Any:
    return _shift(x, axes, -1)


__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "ifft", "ifft2", "ifftn",
           "ifftshift", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq", "rfftn"]
