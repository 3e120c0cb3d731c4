"""Fixtures of the ad-core suite: the array backends, and the import path of the
case table (the root configuration imports test modules in importlib mode)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from adcore_support import cupy_or_skip  # noqa: E402


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "cupy":
        cupy_or_skip()
    return request.param
