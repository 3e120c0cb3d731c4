"""The eager fast paths (issue 14's per-primitive overhead work) compute exactly
what the general paths they bypass compute: the 2-d `dot_general` plans and
their cached cotangent plans, the reductions' direct ufunc calls, and the
cached NumPy-ufunc dispatch of traced values."""

from __future__ import annotations

import numpy as np
import pytest
from wengert import ad
from wengert.ad import lax
from wengert.ad.primitives import registry

dot_general = registry["dot_general"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---- dot_general: 2-d plans and cached cotangent plans ------------------------------------------
PRODUCTS = {((1,), (0,)): "ij,jk->ik", ((0,), (0,)): "ji,jk->ik", ((1,), (1,)): "ij,kj->ik",
            ((0,), (1,)): "ji,kj->ik"}


@pytest.mark.parametrize("contract", list(PRODUCTS))
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_matrix_products_match_einsum(contract, dtype, rng):
    shape_a = (3, 4) if contract[0] == (1,) else (4, 3)
    shape_b = (4, 5) if contract[1] == (0,) else (5, 4)
    a = (rng.standard_normal(shape_a) * 4).astype(dtype)
    b = (rng.standard_normal(shape_b) * 4).astype(dtype)
    for x, y in [(a, b), (np.asfortranarray(a), np.asfortranarray(b))]:
        got = dot_general.impl(x, y, dimension_numbers=(contract, ((), ())))
        want = np.einsum(PRODUCTS[contract], x, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("contract", list(PRODUCTS))
def test_matrix_product_gradients_are_the_transposed_products(contract, rng):
    shape_a = (3, 4) if contract[0] == (1,) else (4, 3)
    shape_b = (4, 5) if contract[1] == (0,) else (5, 4)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    g = rng.standard_normal((3, 5))
    spec = PRODUCTS[contract]
    _, back = ad.pullback(lambda a, b: lax.dot_general(a, b, (contract, ((), ()))), a, b)
    ga, gb = back(g)
    inputs, _ = spec.split("->")
    sa, sb = inputs.split(",")
    np.testing.assert_allclose(ga, np.einsum(f"ik,{sb}->{sa}", g, b), rtol=1e-12)
    np.testing.assert_allclose(gb, np.einsum(f"{sa},ik->{sb}", a, g), rtol=1e-12)
    assert ga.flags.c_contiguous and gb.flags.c_contiguous  # weight gradients stay row-major


def test_batched_contraction_gradient_matches_einsum(rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    g = rng.standard_normal((2, 3, 5))
    dn = (((2,), (1,)), ((0,), (0,)))
    np.testing.assert_allclose(dot_general.impl(a, b, dimension_numbers=dn),
                               np.einsum("bij,bjk->bik", a, b), rtol=1e-12)
    _, back = ad.pullback(lambda a, b: lax.dot_general(a, b, dn), a, b)
    ga, gb = back(g)
    np.testing.assert_allclose(ga, np.einsum("bik,bjk->bij", g, b), rtol=1e-12)
    np.testing.assert_allclose(gb, np.einsum("bij,bik->bjk", a, g), rtol=1e-12)


# ---- reductions ---------------------------------------------------------------------------------
REDUCTIONS = [("reduce_sum", np.sum), ("reduce_prod", np.prod), ("reduce_max", np.max),
              ("reduce_min", np.min)]


@pytest.mark.parametrize("name, fn, dtype", [
    (name, fn, dtype) for name, fn in REDUCTIONS
    for dtype in [bool, np.int8, np.uint16, np.float32, np.complex64]
    if not (dtype is np.complex64 and fn in (np.max, np.min))])  # complex is not ordered
def test_reductions_give_numpys_types(name, fn, dtype):
    x = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    for axes in [(), (0,), (1,), (0, 1)]:
        got, want = registry[name].impl(x, axes=axes), fn(x, axis=axes)
        assert type(got) is type(want) and got.dtype == want.dtype
        assert np.array_equal(got, want)


# ---- trees and dispatch -------------------------------------------------------------------------
def test_unflatten_with_too_few_leaves_names_the_structure():
    _, treedef = ad.tree_flatten({"a": 1.0, "b": (2.0, 3.0)})
    with pytest.raises(ValueError, match="fewer leaves"):
        ad.tree_unflatten(treedef, [1.0, 2.0])


def test_a_plain_array_times_a_traced_one_keeps_its_derivative_every_time(rng):
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    for _ in range(2):  # the second call takes the cached dispatch
        (gw,) = ad.gradient(lambda w: (x @ w).sum() + np.sin(w).sum(), w)
        np.testing.assert_allclose(gw, x.sum(0)[:, None] + np.cos(w), rtol=1e-12)
