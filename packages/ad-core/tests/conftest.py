"""Fixtures of the ad-core suite: the array backends, and the import path of the
case table (the root configuration imports test modules in importlib mode)."""

from __future__ import annotations

import os
import sys

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
