"""bfloat16 (an ml_dtypes float, NumPy kind 'V') carries derivatives like float32."""

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (installed with jax) is absent")


def test_bfloat16_gradient_keeps_dtype_and_matches_float64():
    x64 = np.array([0.25, -0.5, 1.0])
    x = x64.astype(ml_dtypes.bfloat16)
    (g,) = ad.gradient(lambda x: wnp.sum(wnp.tanh(x) * x), x)
    assert g.dtype == ml_dtypes.bfloat16
    expected = np.tanh(x64) + x64 * (1 - np.tanh(x64) ** 2)
    np.testing.assert_allclose(g.astype(np.float64), expected, rtol=2e-2)


def test_bfloat16_is_differentiable_and_staged_gradient_is_not_empty():
    x = np.ones((2, 3), ml_dtypes.bfloat16)
    assert ad.is_differentiable(x)
    graph = ad.make_graph(ad.grad(lambda x: wnp.sum(x * x)), x)
    assert graph.eqns, "the staged gradient of a bfloat16 function must compute something"
    np.testing.assert_allclose(np.asarray(ad.eval_graph(graph, x), np.float64), 2.0)
