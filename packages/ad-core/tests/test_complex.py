"""The complex convention: for a real-valued f(z), `gradient` returns
df/dx + i df/dy (steepest ascent; JAX returns the conjugate), for holomorphic
and non-holomorphic pieces alike, checked against finite differences along
the real and the imaginary axis."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp

from adcore_support import numerical_gradient

Z = np.array([0.6 + 0.8j, -1.1 + 0.3j, 0.4 - 1.5j])
W = np.array([1.2 - 0.4j, 0.2 + 0.9j, -0.7 - 0.1j])

REAL_VALUED = {
    "abs-squared": lambda z: wnp.sum(wnp.abs(z) ** 2),
    "real-of-holomorphic": lambda z: wnp.sum(wnp.real(wnp.exp(z) * wnp.sin(z ** 2))),
    "imag-of-holomorphic": lambda z: wnp.sum(wnp.imag(wnp.log(z * z + 3))),
    "abs-of-holomorphic": lambda z: wnp.sum(wnp.abs(wnp.tanh(z) / (z + 2))),
    "conjugate-mixing": lambda z: wnp.real(wnp.vdot(z, W * wnp.conj(z))),
    "angle": lambda z: wnp.sum(wnp.angle(z) ** 2),
    "matrix": lambda z: wnp.real(wnp.sum(wnp.outer(z, wnp.conj(z)) @ wnp.outer(W, z))),
}


@pytest.mark.parametrize("name", REAL_VALUED)
def test_gradient_is_df_dx_plus_i_df_dy(name):
    f = REAL_VALUED[name]
    (g,) = ad.gradient(f, Z)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, numerical_gradient(f, Z), rtol=1e-6, atol=1e-8)


def test_closed_forms():
    # f = |z|^2 = x^2 + y^2: gradient 2x + 2iy = 2z.
    np.testing.assert_allclose(ad.gradient(lambda z: wnp.sum(wnp.real(z * wnp.conj(z))), Z)[0],
                               2 * Z)
    # f = Re(z^2) = x^2 - y^2: gradient 2x - 2iy = 2 conj(z), the conjugate of f'(z).
    np.testing.assert_allclose(ad.gradient(lambda z: wnp.sum(wnp.real(z * z)), Z)[0],
                               2 * np.conj(Z))


def test_gradient_step_descends():
    f = REAL_VALUED["abs-of-holomorphic"]
    (g,) = ad.gradient(f, Z)
    assert float(f(Z - 1e-3 * g)) < float(f(Z)) < float(f(Z + 1e-3 * g))


def test_python_complex_scalar_and_real_complex_mixture():
    def f(z, r):
        return abs(z * r + 1j) ** 2

    z, r = 0.5 - 0.25j, 1.5
    gz, gr = ad.gradient(f, z, r)
    assert type(gz) is complex and type(gr) is float
    expected_z = complex(numerical_gradient(lambda v: f(complex(v), r), np.complex128(z)))
    assert gz == pytest.approx(expected_z, rel=1e-6)
    assert gr == pytest.approx(float(numerical_gradient(lambda v: f(z, float(v)), r)), rel=1e-6)


def test_pullback_of_a_holomorphic_map_is_conjugate_linear():
    y, back = ad.pullback(lambda z: z ** 3, Z)
    v = np.array([1.0, 1j, 0.5 - 0.5j])
    (g,) = back(v)
    np.testing.assert_allclose(g, v * np.conj(3 * Z ** 2))
    np.testing.assert_allclose(back(1j * v)[0], 1j * g)
