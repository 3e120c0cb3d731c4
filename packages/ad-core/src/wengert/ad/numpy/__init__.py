"""A NumPy-compatible namespace whose functions are differentiable.

``import wengert.ad.numpy as wnp`` and write NumPy code; every function takes
plain arrays (and then returns plain arrays at NumPy's speed) or traced values.
Unmodified NumPy code is differentiated too, through NEP-13/NEP-18 dispatch to
the functions here.
"""

from numpy import (bool_, complex64, complex128, dtype, e, euler_gamma, finfo, float16,
                   float32, float64, iinfo, inf, int8, int16, int32, int64, nan, ndarray,
                   newaxis, pi, uint8)

from ._contraction import dot, einsum, inner, kron, matmul, outer, tensordot, vdot
from ._creation import (arange, array, asarray, astype, empty, empty_like, eye, full,
                        full_like, identity, iscomplexobj, linspace, ndim, ones, ones_like,
                        result_type, shape, size, zeros, zeros_like)
from ._elementwise import *  # noqa: F401,F403  (the elementwise table)
from ._elementwise import abs, round  # noqa: A004
from ._reductions import (all, amax, amin, any, argmax, argmin, argsort, average, cumprod,
                          cumsum, logsumexp, max, mean, min, prod, sort, std, sum,
                          take_along_axis, var)
from ._shape import (atleast_1d, atleast_2d, broadcast_arrays, broadcast_to, concatenate,
                     diag, diagonal, expand_dims, flip, fliplr, flipud, hstack, moveaxis, pad,
                     ravel, repeat, reshape, roll, split, squeeze, stack, swapaxes, take, tile,
                     trace, transpose, tril, triu, vstack)
from . import _methods as _methods_module
import sys as _sys

_methods_module.install(_sys.modules[__name__])
del _sys, _methods_module

from ._contraction import matvec, vecdot, vecmat
from ._reductions import median, nanmean, nansum, percentile, ptp, quantile
from ._shape import diff
from . import fft, linalg
from ._contraction import cross
from ._elementwise import isclose, nan_to_num, select
from ._reductions import count_nonzero, trapezoid
from ._shape import append, array_split, atleast_3d, column_stack, copy, meshgrid, unstack
from ._elementwise import allclose, real_if_close
from ._index_tricks import c_, r_
from ._reductions import argpartition, partition
from ._shape import (concat, dsplit, dstack, gradient, hsplit, matrix_transpose, permute_dims,
                     rollaxis, rot90, row_stack, vsplit)
from ._creation import iscomplex, isreal, isrealobj
