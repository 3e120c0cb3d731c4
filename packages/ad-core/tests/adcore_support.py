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
