"""The eager fast paths (issue 14's per-primitive overhead work) compute exactly
what the general paths they bypass compute: `select`'s bit mask, the 2-d
`dot_general` plans and their cached cotangent plans, the reductions'
direct ufunc calls, and the cached NumPy-ufunc dispatch of traced values."""

from __future__ import annotations

import numpy as np
import pytest
import wengert.ad.numpy as wnp
from wengert import ad
from wengert.ad import lax
from wengert.ad.primitives import registry

select = registry["select"]
dot_general = registry["dot_general"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---- select: where(mask, g, 0) as a bit mask ---------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_select_with_a_zero_is_bitwise_np_where(dtype, rng):
    x = rng.standard_normal((5, 7)).astype(dtype)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]  # dropped or kept, they must match np.where
    x[1, :4] = [np.nan, np.inf, -np.inf, -0.0]
    mask = rng.random((5, 7)) > 0.5
    mask[0, :4], mask[1, :4] = False, True
    for got, want in [(select.impl(mask, x, 0), np.where(mask, x, 0)),
                      (select.impl(mask, 0, x), np.where(mask, 0, x)),
                      (select.impl(mask[:, ::2], x[:, ::2], 0), np.where(mask[:, ::2], x[:, ::2], 0)),
                      (select.impl(mask[0, 0], x[0, 0], 0), np.where(mask[0, 0], x[0, 0], 0))]:
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == np.ascontiguousarray(want).tobytes()


def test_select_outside_the_fast_path_is_np_where(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    mask = rng.random((4, 3)) > 0.5
    cases = [(mask[:, :1], x, 0),                       # the mask broadcasts
             (mask, x.astype(np.complex64), 0),          # no integer of that width
             (mask, x.astype(np.int32), 0),              # not a float
             (mask, x, 1), (mask, x, 0.0), (mask, x, False), (mask.astype(np.int8), x, 0)]
    for c, a, b in cases:
        got, want = select.impl(c, a, b), np.where(c, a, b)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_relu_like_pullback_drops_nan_cotangents_where_masked(rng):
    x = np.array([-1.0, 2.0, -3.0], np.float32)
    _, back = ad.pullback(lambda x: wnp.where(x > 0, x, 0), x)
    (g,) = back(np.array([np.nan, 1.0, np.inf], np.float32))
    assert g.tobytes() == np.array([0.0, 1.0, 0.0], np.float32).tobytes()


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
