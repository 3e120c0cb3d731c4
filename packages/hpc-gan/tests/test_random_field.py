"""Kernels and the Karhunen-Loeve expansion: covariance, spectrum, truncation."""

import numpy as np
import pytest
from scipy.optimize import brentq
from wengert.hpcgan import CovarianceModel, Grid, Kernel, PresetError, karhunen_loeve
from wengert.hpcgan.random_field import FFTCovariance, covariance_matrix

MODEL = CovarianceModel(
    (
        Kernel("squared_exponential", 0.5, 0.3),
        Kernel("exponential", 0.3, 0.12),
        Kernel("matern32", 0.2, 0.2),
    )
)


def test_kernels_at_zero_and_known_values():
    r = np.array([0.0, 0.1, 1.0])
    assert np.allclose(
        Kernel("squared_exponential", 2.0, 0.5)(r), 2.0 * np.exp(-0.5 * (r / 0.5) ** 2)
    )
    assert np.allclose(Kernel("exponential", 2.0, 0.5)(r), 2.0 * np.exp(-r / 0.5))
    s = np.sqrt(3) * r / 0.5
    assert np.allclose(Kernel("matern32", 2.0, 0.5)(r), 2.0 * (1 + s) * np.exp(-s))
    assert MODEL(0.0) == pytest.approx(MODEL.variance) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "field, value",
    [("variance", 0.0), ("variance", -1.0), ("length", 0.0), ("length", float("nan"))],
)
def test_kernel_rejects_non_positive_parameters(field, value):
    args = {"type": "exponential", "variance": 1.0, "length": 1.0, field: value}
    with pytest.raises(PresetError, match=field):
        Kernel(**args)


def test_kernel_type_typo_suggests_the_right_name():
    with pytest.raises(PresetError, match="did you mean 'matern32'"):
        Kernel("matern_32", 1.0, 1.0)


def test_fft_products_equal_dense_covariance(tiny):
    grid = tiny.site.grid
    X = np.random.default_rng(1).standard_normal((grid.n_active, 40))
    assert np.allclose(
        FFTCovariance(grid, MODEL, block=16).matmat(X),
        covariance_matrix(grid, MODEL) @ X,
        atol=1e-12,
    )


def test_sample_covariance_matches_kernel(tiny):
    """With every mode kept, each sample covariance entry must lie within 5 Monte Carlo
    standard errors of the kernel, and the normalised squared errors must average about 1."""
    grid = tiny.site.grid
    kl = karhunen_loeve(grid, MODEL, mean=1.5, variance_fraction=1.0)
    n = 6000
    Y = kl.sample(np.random.default_rng(7).standard_normal((n, kl.n_modes)))
    centred = Y - 1.5
    sample = centred.T @ centred / n
    exact = covariance_matrix(grid, MODEL)
    stderr = np.sqrt((exact**2 + np.outer(np.diag(exact), np.diag(exact))) / n)
    z = (sample - exact) / stderr
    assert np.abs(z).max() < 5.0
    assert 0.8 < np.mean(z**2) < 1.25
    assert np.abs(Y.mean(axis=0) - 1.5).max() < 5 * np.sqrt(MODEL.variance / n)


def _exponential_kernel_spectrum(length: float, a: float, count: int) -> np.ndarray:
    """Exact eigenvalues of exp(-|x - y| / length) on [-a, a] (the classical transcendental
    equations): lambda = 2 length / (1 + length^2 w^2) with w tan(w a) = 1/length for even
    eigenfunctions and w + tan(w a)/length = 0 for odd ones."""
    c, eps, roots = 1.0 / length, 1e-12, []
    for k in range(count):
        roots.append(
            brentq(
                lambda w: w * np.tan(w * a) - c, k * np.pi / a + eps, (k + 0.5) * np.pi / a - eps
            )
        )
        roots.append(
            brentq(
                lambda w: w + np.tan(w * a) * c,
                (k + 0.5) * np.pi / a + eps,
                (k + 1) * np.pi / a - eps,
            )
        )
    return np.sort(2 * length / (1 + (length * np.array(roots)) ** 2))[::-1][:count]


@pytest.mark.filterwarnings("ignore:KL expansion stopped at max_modes")
@pytest.mark.parametrize("method", ["dense", "randomized"])
def test_one_dimensional_spectrum_matches_exact_kl(method):
    a, n, length = 1.0, 800, 0.5
    strip = Grid(origin=(-a, 0.0), h=2 * a / n, mask=np.ones((1, n), dtype=bool))
    kl = karhunen_loeve(
        strip,
        CovarianceModel((Kernel("exponential", 1.0, length),)),
        variance_fraction=1.0,
        max_modes=12,
        method=method,
    )
    continuous = kl.eigenvalues[:12] * strip.h  # the cell length weights the discrete operator
    exact = _exponential_kernel_spectrum(length, a, 12)
    assert np.allclose(continuous, exact, rtol=2e-3)


def test_randomized_solver_agrees_with_dense(tiny):
    """On tiny the spectrum decays slowly (a hard case for subspace iteration): the leading
    modes must be exact, the tail close, and the truncated covariance nearly as good."""
    grid = tiny.site.grid
    dense = karhunen_loeve(grid, MODEL, variance_fraction=0.95, method="dense")
    fast = karhunen_loeve(
        grid, MODEL, variance_fraction=0.95, max_modes=dense.n_modes + 10, method="randomized"
    )
    k = dense.n_modes
    assert np.allclose(fast.eigenvalues[:10], dense.eigenvalues[:10], rtol=1e-8)
    assert np.allclose(fast.eigenvalues[: k // 2], dense.eigenvalues[: k // 2], rtol=1e-2)
    assert np.all(
        fast.eigenvalues[:k] <= dense.eigenvalues * (1 + 1e-10)
    )  # Ritz values are lower bounds
    assert fast.n_modes >= dense.n_modes
    overlap = np.abs(np.sum(fast.modes[:, :10] * dense.modes[:, :10], axis=0))
    assert overlap.min() > 1 - 1e-8
    C = covariance_matrix(grid, MODEL)
    residual = [
        np.linalg.norm(C - (kl.modes[:, :k] * kl.eigenvalues[:k]) @ kl.modes[:, :k].T)
        for kl in (dense, fast)
    ]
    assert residual[1] < 1.1 * residual[0]


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.95, 0.99])
def test_retained_variance_fraction_is_honoured(tiny, fraction):
    grid = tiny.site.grid
    full = karhunen_loeve(grid, MODEL, variance_fraction=1.0)
    kl = karhunen_loeve(grid, MODEL, variance_fraction=fraction)
    total = np.trace(covariance_matrix(grid, MODEL))
    assert kl.total_variance == pytest.approx(total)
    assert kl.retained_fraction >= fraction
    assert (
        full.eigenvalues[: kl.n_modes - 1].sum() / total < fraction
    )  # one mode fewer would not do
    # The truncated field's pointwise variance, summed, is exactly the retained part.
    field_variance = np.sum(kl.modes**2 * kl.eigenvalues)
    assert field_variance / total == pytest.approx(kl.retained_fraction, rel=1e-10)


def test_modes_are_orthonormal_and_fields_reproducible(tiny):
    kl = karhunen_loeve(tiny.site.grid, MODEL, variance_fraction=0.9)
    assert np.allclose(kl.modes.T @ kl.modes, np.eye(kl.n_modes), atol=1e-10)
    again = karhunen_loeve(tiny.site.grid, MODEL, variance_fraction=0.9)
    assert np.array_equal(kl.modes, again.modes)


def test_max_modes_caps_the_expansion_with_a_warning(tiny):
    with pytest.warns(RuntimeWarning, match="raise max_modes"):
        kl = karhunen_loeve(tiny.site.grid, MODEL, variance_fraction=0.99, max_modes=5)
    assert kl.n_modes == 5 and kl.retained_fraction < 0.99


def test_bad_truncation_requests(tiny):
    with pytest.raises(PresetError, match="variance_fraction"):
        karhunen_loeve(tiny.site.grid, MODEL, variance_fraction=1.5)
    with pytest.raises(PresetError, match="max_modes"):
        karhunen_loeve(tiny.site.grid, MODEL, max_modes=tiny.site.grid.n_active + 1)
