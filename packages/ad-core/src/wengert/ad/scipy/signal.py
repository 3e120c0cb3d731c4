"""Differentiable `scipy.signal`: ``convolve`` and ``correlate`` of N-d arrays
(``mode`` full, same or valid), as one ``conv_general_dilated`` each, so they
are differentiable in both inputs to any order and compile to XLA."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lax import conv_general_dilated
from ..numpy import conj, flip, reshape
from ..numpy._common import as_array


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """``out[n] = sum_m in1[m] in2[n - m]``, as `scipy.signal.convolve` (``method`` is
    accepted and ignored: there is one method here)."""
    in1, in2 = as_array(in1), as_array(in2)
    return _correlate(in1, flip(in2), mode, "convolve")


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """``out[n] = sum_m in1[n + m] conj(in2[m])``, as `scipy.signal.correlate`."""
    in1, in2 = as_array(in1), as_array(in2)
    if in2.dtype.kind == "c":
        in2 = conj(in2)
    return _correlate(in1, in2, mode, "correlate")


def _correlate(in1: Any, kernel: Any, mode: str, name: str) -> Any:
    if in1.ndim != kernel.ndim:
        raise ValueError(f"{name}: in1 and in2 should have the same dimensionality")
    s1, s2 = in1.shape, kernel.shape
    if mode == "valid":
        if all(a >= b for a, b in zip(s1, s2)):
            pass
        elif all(a <= b for a, b in zip(s1, s2)):  # SciPy swaps the inputs
            return _swapped(in1, kernel, name)
        else:
            raise ValueError(f"{name}(mode='valid'): one input must be at least as large as "
                             "the other in every dimension")
        padding = [(0, 0)] * len(s1)
    elif mode == "full":
        padding = [(k - 1, k - 1) for k in s2]
    elif mode == "same":
        padding = [(k - 1 - (k - 1) // 2, (k - 1) // 2) for k in s2]
    else:
        raise ValueError(f"{name}: mode must be 'full', 'same' or 'valid', got {mode!r}")
    nd = len(s1)
    spatial = tuple(range(1, nd + 1))
    lhs = reshape(in1, (1, *s1, 1))
    rhs = reshape(kernel, (*s2, 1, 1))
    out = conv_general_dilated(lhs, rhs, (1,) * nd, padding, dimension_numbers=(
        (0, nd + 1, *spatial), (nd + 1, nd, *range(nd)), (0, nd + 1, *spatial)))
    return reshape(out, out.shape[1:-1])


def _swapped(in1: Any, kernel: Any, name: str) -> Any:
    """'valid' with ``in2`` the larger: SciPy computes it with the roles swapped."""
    if name == "convolve":  # convolution commutes
        return _correlate(flip(kernel), flip(in1), "valid", name)
    in2 = conj(kernel) if kernel.dtype.kind == "c" else kernel
    swapped = _correlate(in2, conj(in1) if in1.dtype.kind == "c" else in1, "valid", name)
    out = flip(swapped)
    return conj(out) if out.dtype.kind == "c" else out


__all__ = ["convolve", "correlate"]
