"""The systematic gradient suite: every case of `gradient_cases` checked with
`wengert.ad.testing.check_grads` (JVP against central finite differences, VJP
through <v, J u> = <J^T v, u>) at first order, and a representative subset at
second order. On CuPy the same cases must give NumPy's values, JVPs and VJPs,
with CuPy arrays coming back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import wengert.ad as ad
from wengert.ad.testing import check_grads

from adcore_support import bound, cupy_or_skip, random_like
from gradient_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_first_order(case: Case, backend: str) -> None:
    if backend == "numpy":
        check_grads(bound(case), case.args, order=1, rtol=case.rtol, atol=case.rtol)
    elif case.gpu_skip:
        pytest.skip(case.gpu_skip)
    else:
        assert_same_on_gpu(bound(case), case.args)


@pytest.mark.parametrize("case", [c for c in CASES if c.order2], ids=lambda c: c.id)
def test_second_order(case: Case) -> None:
    check_grads(bound(case), case.args, order=2, rtol=10 * case.rtol, atol=10 * case.rtol)


def assert_same_on_gpu(f: Callable, args: tuple) -> None:
    cupy = cupy_or_skip()
    rng = np.random.default_rng(0)
    gpu_args = ad.tree_map(lambda x: cupy.asarray(x) if isinstance(x, (np.ndarray, np.generic))
                           else x, args)
    y = f(*args)
    y_gpu = f(*gpu_args)
    for leaf in ad.tree_leaves(y_gpu):
        if np.ndim(leaf) and not isinstance(leaf, cupy.ndarray):
            raise AssertionError(f"CuPy in, {type(leaf).__name__} out")
    assert_tree_close(ad.to_device(y_gpu, "cpu"), y, "value")
    u = random_like(args, rng)
    _, dy = ad.jvp(f, args, u)
    _, dy_gpu = ad.jvp(f, gpu_args, ad.to_device(u, "gpu"))
    assert_tree_close(ad.to_device(dy_gpu, "cpu"), dy, "JVP")
    v = random_like(y, rng)
    cts = ad.pullback(f, *args)[1](v)
    cts_gpu = ad.pullback(f, *gpu_args)[1](ad.to_device(v, "gpu"))
    assert_tree_close(ad.to_device(cts_gpu, "cpu"), cts, "VJP")


def assert_tree_close(actual: Any, expected: Any, what: str) -> None:
    a, e = ad.tree_leaves(actual), ad.tree_leaves(expected)
    assert len(a) == len(e), f"{what}: {len(a)} leaves, expected {len(e)}"
    for k, (x, y) in enumerate(zip(a, e)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-11,
                                   err_msg=f"{what}, leaf {k}")
