"""The `fft` primitive, shaped like XLA's: one operation with ``fft_type`` in
``fft / ifft / rfft / irfft`` over the trailing ``len(fft_lengths)`` axes, with
NumPy's default ("backward") normalisation. `wengert.ad.numpy.fft` moves axes,
resizes and rescales around it.

Every transform is linear, so each pullback is another transform. Under the
complex convention a pullback is the adjoint for ``Re(sum(conj(a) b))``:
the adjoint of ``fft`` is ``N * ifft``. A real transform's half spectrum
stands for two bins of the full one except at frequency 0 (and at Nyquist for
even lengths): that is the Hermitian weighting in the ``rfft``/``irfft`` rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core import Aval, Primitive
from ._helpers import on_device_of, to_operand

_TRANSFORMS = {"fft": np.fft.fftn, "ifft": np.fft.ifftn, "rfft": np.fft.rfftn,
               "irfft": np.fft.irfftn}


def _fft_impl(x, *, fft_type, fft_lengths):
    # NumPy's functions dispatch CuPy arrays to cupy.fft (NEP-18).
    axes = tuple(range(-len(fft_lengths), 0))
    return _TRANSFORMS[fft_type](x, s=fft_lengths, axes=axes)


def _complex_of(dtype: Any) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def _fft_shape(x, *, fft_type, fft_lengths):
    shape = tuple(x.shape)
    if fft_type == "rfft":
        return Aval(shape[:-1] + (fft_lengths[-1] // 2 + 1,), _complex_of(x.dtype))
    if fft_type == "irfft":
        return Aval(shape[:-1] + (fft_lengths[-1],), np.finfo(x.dtype).dtype)
    return Aval(shape, _complex_of(x.dtype))


def _bin_weights(n: int, doubled: float, dtype: Any) -> np.ndarray:
    """Per half-spectrum bin: 1 for the bins that stand alone, ``doubled`` for the others."""
    w = np.full(n // 2 + 1, doubled, dtype=np.finfo(dtype).dtype)
    w[0] = 1
    if n % 2 == 0:
        w[-1] = 1
    return w


def _transform(x: Any, fft_type: str, fft_lengths: tuple) -> Any:
    return fft_p.bind(x, fft_type=fft_type, fft_lengths=fft_lengths)


def _fft_vjp(g, ans, x, *, fft_type, fft_lengths):
    n = int(np.prod(fft_lengths, dtype=np.int64))
    if fft_type == "fft":
        return to_operand(_transform(g, "ifft", fft_lengths) * n, x)
    if fft_type == "ifft":
        return to_operand(_transform(g, "fft", fft_lengths) * (1 / n), x)
    if fft_type == "rfft":
        half = on_device_of(g, _bin_weights(fft_lengths[-1], 0.5, g.dtype))
        return _transform(g * half, "irfft", fft_lengths) * n
    twice = on_device_of(g, _bin_weights(fft_lengths[-1], 2.0, g.dtype))
    return _transform(g, "rfft", fft_lengths) * twice * (1 / n)


fft_p = Primitive("fft", _fft_impl, keep_args=False)
fft_p.def_rules(
    shape=_fft_shape,
    jvps=(lambda t, ans, x, **params: fft_p.bind(t, **params),),
    vjps=(_fft_vjp,))
