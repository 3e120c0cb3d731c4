"""Fixtures of the ad-core suite: the array backends, and the import path of the
case table (the root configuration imports test modules in importlib mode)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))


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


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "cupy":
        cupy_or_skip()
    return request.param


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
