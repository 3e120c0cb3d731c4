"""Helpers shared by the ad-core test modules (a uniquely named module, so that the
``conftest`` modules of other packages cannot shadow it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp


def cupy_or_skip():
    """CuPy with a usable CUDA device, or a skip that says which is missing."""
    cupy = pytest.importorskip(
        "cupy", reason="CuPy is not installed: the CuPy half of the suite needs CuPy and a "
        "CUDA GPU (pip install 'wengert-ad[cuda]')")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        pytest.skip(f"CuPy is installed but CUDA is unusable here: {exc}")
    if count == 0:
        pytest.skip("CuPy is installed but no CUDA device is visible")
    return cupy


def numerical_gradient(f, x, eps: float = 1e-6):
    """Central differences of a real scalar function; for complex ``x`` the result is
    ``df/dRe + i df/dIm``, the convention `wengert.ad.gradient` documents."""
    x = np.asarray(x)
    out = np.zeros(x.shape, x.dtype)
    flat = out.reshape(-1)
    directions = (1.0, 1j) if np.iscomplexobj(x) else (1.0,)
    for k in range(x.size):
        for d in directions:
            step = np.zeros(x.size, x.dtype)
            step[k] = eps * d
            step = step.reshape(x.shape)
            slope = (float(f(x + step)) - float(f(x - step))) / (2 * eps)
            flat[k] += slope * d
    return out


def bound(case: Any) -> Callable:
    """A gradient case as a function of its arguments alone."""
    from gradient_cases import resolve

    op = resolve(case.name)
    return lambda *args: case.fn(op, wnp, *args)


def random_like(tree: Any, rng: np.random.Generator) -> Any:
    def one(x: Any) -> Any:
        if not ad.is_differentiable(x):
            return None
        r = rng.standard_normal(np.shape(x))
        if np.iscomplexobj(x):
            r = r + 1j * rng.standard_normal(np.shape(x))
        return np.asarray(r, dtype=np.result_type(x))

    return ad.tree_map(one, tree)


# ---- conformance: every public name of NumPy (and the SciPy functions of issue 10) ------------
# Each callable is differentiable (a gradient case of that name exists), passes through
# (called on traced inputs it returns integers, booleans, shapes or Python values), or is
# refused (called on traced inputs it raises NonDifferentiableError naming it; NumPy's
# conversion functions, which ask for ``__array__`` from C where no protocol can intercept,
# raise TracerArrayConversionError; NumPy's C iterators refuse with their own TypeError).
# test_conformance checks each by calling.
# ``CALLS`` says how to call a name on ``x``, a traced 2x3 float array (default ``fn(x)``).


def _with_stdout_captured(fn: Callable) -> Any:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


def _saved_array() -> Any:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros(2))
    buf.seek(0)
    return buf


def _from_temporary_file(fn: Callable) -> Any:
    import tempfile

    with tempfile.TemporaryFile() as f:
        return fn(f)


def _text(s: str) -> Any:
    import io

    return io.StringIO(s)


_BINARY = lambda fn, x: fn(x, x)  # noqa: E731
_LENGTH = lambda fn, x: fn(x.shape[0])  # noqa: E731
_SHAPE = lambda fn, x: fn(x.shape)  # noqa: E731
_NO_ARGS = lambda fn, x: fn()  # noqa: E731
CALLS: dict[str, Callable] = {
    **dict.fromkeys(
        ["numpy.equal", "numpy.not_equal", "numpy.less", "numpy.less_equal", "numpy.greater",
         "numpy.greater_equal", "numpy.logical_and", "numpy.logical_or", "numpy.logical_xor",
         "numpy.isclose", "numpy.allclose", "numpy.array_equal", "numpy.array_equiv",
         "numpy.bitwise_and", "numpy.bitwise_or", "numpy.bitwise_xor", "numpy.left_shift",
         "numpy.right_shift", "numpy.bitwise_left_shift", "numpy.bitwise_right_shift",
         "numpy.gcd", "numpy.lcm", "numpy.nextafter", "numpy.intersect1d", "numpy.setdiff1d",
         "numpy.setxor1d", "numpy.union1d", "numpy.isin", "numpy.may_share_memory",
         "numpy.shares_memory", "numpy.polyadd", "numpy.polydiv", "numpy.polymul",
         "numpy.polysub", "numpy.polyval", "numpy.convolve", "numpy.correlate",
         "numpy.histogram2d", "numpy.linalg.cross", "numpy.linalg.tensorsolve"], _BINARY),
    **dict.fromkeys(
        ["numpy.arange", "numpy.bartlett", "numpy.blackman", "numpy.hamming", "numpy.hanning",
         "numpy.diag_indices", "numpy.tri", "numpy.tril_indices", "numpy.triu_indices",
         "numpy.identity", "numpy.eye", "numpy.fft.fftfreq", "numpy.fft.rfftfreq"], _LENGTH),
    **dict.fromkeys(["numpy.zeros", "numpy.ones", "numpy.empty", "numpy.indices"], _SHAPE),
    **dict.fromkeys(["numpy.get_include", "numpy.get_printoptions", "numpy.getbufsize",
                     "numpy.geterr", "numpy.geterrcall", "numpy.printoptions"], _NO_ARGS),
    "numpy.argpartition": lambda fn, x: fn(x, 1),
    "numpy.nanpercentile": lambda fn, x: fn(x, 50),
    "numpy.nanquantile": lambda fn, x: fn(x, 0.5),
    "numpy.apply_along_axis": lambda fn, x: fn(np.sum, 0, x),
    "numpy.apply_over_axes": lambda fn, x: fn(np.sum, x, [0]),
    "numpy.choose": lambda fn, x: fn(np.array([0, 1, 0]), [x[0], x[1]]),
    "numpy.compress": lambda fn, x: fn([True, False], x, axis=0),
    "numpy.extract": lambda fn, x: fn(np.ones((2, 3), bool), x),
    "numpy.delete": lambda fn, x: fn(x, 0),
    "numpy.insert": lambda fn, x: fn(x, 0, 1.0),
    "numpy.resize": lambda fn, x: fn(x, (3, 2)),
    "numpy.piecewise": lambda fn, x: fn(x, [np.ones((2, 3), bool)], [1.0]),
    "numpy.place": lambda fn, x: fn(x, np.ones((2, 3), bool), [1.0]),
    "numpy.put": lambda fn, x: fn(x, [0], [1.0]),
    "numpy.putmask": lambda fn, x: fn(x, np.ones((2, 3), bool), 1.0),
    "numpy.put_along_axis": lambda fn, x: fn(x, np.zeros((2, 1), int), 1.0, axis=1),
    "numpy.fill_diagonal": lambda fn, x: fn(x, 1.0),
    "numpy.copyto": lambda fn, x: fn(np.zeros((2, 3)), x),
    "numpy.searchsorted": lambda fn, x: fn(x[0], x[1]),
    "numpy.digitize": lambda fn, x: fn(x, np.array([0.0, 1.0])),
    "numpy.interp": lambda fn, x: fn(x, x[0], x[1]),
    "numpy.polyfit": lambda fn, x: fn(x[0], x[1], 1),
    "numpy.geomspace": lambda fn, x: fn(x[0, 0], x[0, 1], 3),
    "numpy.logspace": lambda fn, x: fn(x[0, 0], x[0, 1], 3),
    "numpy.kaiser": lambda fn, x: fn(x.shape[0], 5.0),
    "numpy.mask_indices": lambda fn, x: fn(x.shape[0], np.triu),
    "numpy.broadcast_shapes": lambda fn, x: fn(x.shape, (1, 3)),
    "numpy.ravel_multi_index": lambda fn, x: fn(np.array([[0], [1]]), x.shape),
    "numpy.unravel_index": lambda fn, x: fn(1, x.shape),
    "numpy.fromfunction": lambda fn, x: fn(lambda i, j: i + j, x.shape),
    "numpy.nested_iters": lambda fn, x: fn(x, [[0], [1]]),
    "numpy.can_cast": lambda fn, x: fn(x.dtype, np.float32),
    "numpy.promote_types": lambda fn, x: fn(x.dtype, np.int8),
    "numpy.issubdtype": lambda fn, x: fn(x.dtype, np.floating),
    "numpy.isdtype": lambda fn, x: fn(x.dtype, "real floating"),
    "numpy.mintypecode": lambda fn, x: fn(x.dtype.char),
    "numpy.typename": lambda fn, x: fn(x.dtype.char),
    "numpy.base_repr": lambda fn, x: fn(x.shape[1]),
    "numpy.binary_repr": lambda fn, x: fn(x.shape[1]),
    "numpy.format_float_positional": lambda fn, x: fn(x.dtype.type(1.5)),
    "numpy.format_float_scientific": lambda fn, x: fn(x.dtype.type(1.5)),
    "numpy.datetime_data": lambda fn, x: fn(np.dtype("M8[s]")),
    "numpy.busday_count": lambda fn, x: fn("2026-01-01", "2026-02-01"),
    "numpy.busday_offset": lambda fn, x: fn("2026-01-01", x.shape[0]),
    "numpy.setbufsize": lambda fn, x: fn(np.getbufsize()),
    "numpy.seterr": lambda fn, x: fn(**np.geterr()),
    "numpy.seterrcall": lambda fn, x: fn(np.geterrcall()),
    "numpy.set_printoptions": lambda fn, x: fn(**np.get_printoptions()),
    "numpy.show_config": lambda fn, x: fn(mode="dicts"),
    "numpy.show_runtime": lambda fn, x: _with_stdout_captured(fn),
    "numpy.info": lambda fn, x: fn(x, output=_text("")),
    "numpy.frombuffer": lambda fn, x: fn(b"\0" * 8),
    "numpy.fromstring": lambda fn, x: fn("1 2", sep=" "),
    "numpy.fromiter": lambda fn, x: fn(range(x.shape[0]), float),
    "numpy.frompyfunc": lambda fn, x: fn(abs, 1, 1),
    "numpy.fromregex": lambda fn, x: fn(_text("1 2"), r"(\d)", [("a", np.int64)]),
    "numpy.fromfile": lambda fn, x: _from_temporary_file(fn),
    "numpy.genfromtxt": lambda fn, x: fn(_text("1 2")),
    "numpy.loadtxt": lambda fn, x: fn(_text("1 2")),
    "numpy.load": lambda fn, x: fn(_saved_array()),
    "numpy.save": lambda fn, x: fn(_text(""), x),
    "numpy.savetxt": lambda fn, x: fn(_text(""), x),
    "numpy.savez": lambda fn, x: fn(_text(""), x),
    "numpy.savez_compressed": lambda fn, x: fn(_text(""), x),
}

PASS_THROUGH = {
    # integer, boolean and shape results of traced inputs
    "numpy.all", "numpy.any", "numpy.argmax", "numpy.argmin", "numpy.argsort",
    "numpy.argpartition", "numpy.count_nonzero", "numpy.linalg.matrix_rank", "numpy.equal",
    "numpy.not_equal", "numpy.less", "numpy.less_equal", "numpy.greater",
    "numpy.greater_equal", "numpy.logical_and", "numpy.logical_or", "numpy.logical_xor",
    "numpy.logical_not", "numpy.isclose", "numpy.allclose", "numpy.isfinite", "numpy.isinf",
    "numpy.isnan",
    "numpy.iscomplexobj", "numpy.isrealobj", "numpy.iscomplex", "numpy.isreal",
    "numpy.isscalar", "numpy.iterable", "numpy.ndim", "numpy.shape",
    "numpy.size", "numpy.result_type", "numpy.bmat",
    # constants made from the shapes or dtypes of traced inputs
    "numpy.empty_like", "numpy.ones_like", "numpy.zeros_like", "numpy.arange",
    "numpy.bartlett", "numpy.blackman", "numpy.hamming", "numpy.hanning", "numpy.kaiser",
    "numpy.diag_indices", "numpy.tri", "numpy.tril_indices", "numpy.triu_indices",
    "numpy.mask_indices", "numpy.identity", "numpy.eye", "numpy.zeros", "numpy.ones",
    "numpy.empty", "numpy.indices", "numpy.fft.fftfreq", "numpy.fft.rfftfreq",
    "numpy.broadcast_shapes", "numpy.ravel_multi_index", "numpy.unravel_index",
    "numpy.fromfunction", "numpy.can_cast", "numpy.promote_types", "numpy.issubdtype",
    "numpy.isdtype", "numpy.mintypecode", "numpy.typename", "numpy.base_repr",
    "numpy.binary_repr", "numpy.format_float_positional", "numpy.format_float_scientific",
    # no array data: configuration, dates, reading, introspection
    "numpy.get_include", "numpy.get_printoptions", "numpy.getbufsize", "numpy.geterr",
    "numpy.geterrcall", "numpy.printoptions", "numpy.setbufsize", "numpy.seterr",
    "numpy.seterrcall", "numpy.set_printoptions", "numpy.show_config", "numpy.show_runtime",
    "numpy.info", "numpy.datetime_data", "numpy.busday_count", "numpy.busday_offset",
    "numpy.frombuffer", "numpy.fromstring", "numpy.fromiter", "numpy.frompyfunc",
    "numpy.fromregex", "numpy.fromfile", "numpy.genfromtxt", "numpy.loadtxt", "numpy.load",
}

# Raise TracerArrayConversionError: NumPy converts with __array__ from C (no protocol).
REFUSED_BY_CONVERSION = {
    "numpy.asanyarray", "numpy.asarray_chkfinite", "numpy.ascontiguousarray",
    "numpy.asfortranarray", "numpy.asmatrix", "numpy.require", "numpy.from_dlpack",
    "numpy.isfortran",
}

# Integers and booleans only: on float operands they raise TypeError, as NumPy's do.
INTEGER_ONLY = {
    "numpy.bitwise_and", "numpy.bitwise_or", "numpy.bitwise_xor", "numpy.invert",
    "numpy.bitwise_not", "numpy.bitwise_invert", "numpy.left_shift", "numpy.right_shift",
    "numpy.bitwise_left_shift", "numpy.bitwise_right_shift",
}

# NumPy itself refuses a traced operand (with its own TypeError) before any protocol runs.
REFUSED_BY_NUMPY = {"numpy.nested_iters"}

REFUSED = {
    "numpy.apply_along_axis", "numpy.apply_over_axes", "numpy.argwhere", "numpy.array2string",
    "numpy.array_equal", "numpy.array_equiv", "numpy.array_repr", "numpy.array_str",
    "numpy.bincount", "numpy.bitwise_count", "numpy.block",
    "numpy.choose", "numpy.common_type", "numpy.compress", "numpy.convolve", "numpy.copyto",
    "numpy.corrcoef", "numpy.correlate", "numpy.cov", "numpy.cumulative_prod",
    "numpy.cumulative_sum", "numpy.datetime_as_string", "numpy.delete",
    "numpy.diag_indices_from", "numpy.diagflat", "numpy.digitize", "numpy.ediff1d",
    "numpy.einsum_path", "numpy.extract", "numpy.fill_diagonal", "numpy.flatnonzero",
    "numpy.frexp", "numpy.gcd", "numpy.geomspace", "numpy.histogram", "numpy.histogram2d",
    "numpy.histogram_bin_edges", "numpy.histogramdd", "numpy.i0", "numpy.insert",
    "numpy.interp", "numpy.intersect1d", "numpy.is_busday", "numpy.isin", "numpy.isnat", "numpy.isneginf", "numpy.isposinf", "numpy.ix_", "numpy.lcm", "numpy.lexsort",
    "numpy.logspace", "numpy.may_share_memory", "numpy.min_scalar_type", "numpy.nanargmax",
    "numpy.nanargmin", "numpy.nancumprod", "numpy.nancumsum", "numpy.nanmax",
    "numpy.nanmedian", "numpy.nanmin", "numpy.nanpercentile", "numpy.nanprod",
    "numpy.nanquantile", "numpy.nanstd", "numpy.nanvar", "numpy.nextafter", "numpy.nonzero",
    "numpy.packbits", "numpy.piecewise", "numpy.place", "numpy.poly", "numpy.polyadd",
    "numpy.polyder", "numpy.polydiv", "numpy.polyfit", "numpy.polyint", "numpy.polymul",
    "numpy.polysub", "numpy.polyval", "numpy.put", "numpy.put_along_axis", "numpy.putmask",
    "numpy.resize", "numpy.roots", "numpy.save", "numpy.savetxt",
    "numpy.savez", "numpy.savez_compressed", "numpy.searchsorted", "numpy.setdiff1d",
    "numpy.setxor1d", "numpy.shares_memory", "numpy.signbit", "numpy.sort_complex",
    "numpy.spacing", "numpy.tril_indices_from", "numpy.trim_zeros", "numpy.triu_indices_from",
    "numpy.union1d", "numpy.unique", "numpy.unique_all", "numpy.unique_counts",
    "numpy.unique_inverse", "numpy.unique_values", "numpy.unpackbits",
    "numpy.unwrap", "numpy.vander", "numpy.linalg.cross", "numpy.linalg.tensorinv",
    "numpy.linalg.tensorsolve", "numpy.fft.hfft", "numpy.fft.ihfft",
}
