"""Gaussian random fields for ``Y = ln K`` and their truncated Karhunen-Loeve expansion.

The covariance is a sum of stationary isotropic kernels, each with its own variance and
correlation length, so one field carries structure at several scales.  The expansion is
computed on the active cells of a grid: with a dense symmetric eigensolver when the
covariance matrix fits comfortably in memory, otherwise by randomized subspace iteration
whose products with the covariance are FFT convolutions on a zero-padded box, so the
covariance matrix is never formed.
"""

from __future__ import annotations

import difflib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.linalg
from scipy.spatial.distance import cdist

from .errors import PresetError
from .geometry import Grid

#: Kernel correlation functions of the distance ratio ``s = r / length``.
_CORRELATIONS = {
    "squared_exponential": lambda s: np.exp(-0.5 * s * s),
    "exponential": lambda s: np.exp(-s),
    "matern32": lambda s: (1.0 + math.sqrt(3.0) * s) * np.exp(-math.sqrt(3.0) * s),
}
KERNEL_TYPES = tuple(_CORRELATIONS)
#: Largest number of active cells for which ``method="auto"`` forms the dense covariance.
DENSE_LIMIT = 6000
KL_METHODS = ("auto", "dense", "randomized")


@dataclass(frozen=True)
class Kernel:
    """``variance * rho(r / length)`` for one of the :data:`KERNEL_TYPES`."""

    type: str
    variance: float
    length: float

    def __post_init__(self) -> None:
        if self.type not in _CORRELATIONS:
            close = difflib.get_close_matches(str(self.type), KERNEL_TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PresetError(
                f"unknown kernel type {self.type!r}{hint} Known types: {', '.join(KERNEL_TYPES)}"
            )
        for name in ("variance", "length"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise PresetError(
                    f"{self.type} kernel: {name} must be a positive number, got {value!r}"
                )

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self.variance * _CORRELATIONS[self.type](
            np.asarray(r, dtype=np.float64) / self.length
        )


@dataclass(frozen=True)
class CovarianceModel:
    """A sum of kernels; its variance is the sum of the components' variances."""

    kernels: tuple[Kernel, ...]

    def __post_init__(self) -> None:
        if not self.kernels:
            raise PresetError("a covariance model needs at least one kernel")

    @property
    def variance(self) -> float:
        return float(sum(k.variance for k in self.kernels))

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return sum(k(r) for k in self.kernels)


@dataclass(frozen=True, eq=False)
class KLExpansion:
    """``Y = mean + sum_k sqrt(eigenvalue_k) xi_k mode_k`` with independent standard normal ``xi``.

    ``eigenvalues`` are those of the covariance matrix of the active cells (multiply by the
    cell area for the continuous operator's); ``modes`` are orthonormal columns.
    """

    mean: float
    eigenvalues: np.ndarray  # (m,), decreasing
    modes: np.ndarray  # (n_active, m)
    total_variance: float  # trace of the covariance matrix: n_active * sigma_Y^2
    requested_fraction: float
    method: str

    @property
    def n_modes(self) -> int:
        return len(self.eigenvalues)

    @property
    def retained_fraction(self) -> float:
        return float(self.eigenvalues.sum() / self.total_variance)

    def sample(self, xi: np.ndarray) -> np.ndarray:
        """Fields ``(N, n_active)`` for coefficients ``xi`` of shape ``(N, n_modes)``."""
        xi = np.atleast_2d(np.asarray(xi, dtype=np.float64))
        if xi.shape[1] != self.n_modes:
            raise ValueError(
                f"xi has {xi.shape[1]} coefficients per sample, the expansion has {self.n_modes} "
                "modes"
            )
        return self.mean + (xi * np.sqrt(self.eigenvalues)) @ self.modes.T


def covariance_matrix(grid: Grid, model: CovarianceModel) -> np.ndarray:
    """The dense covariance between all active cell centres."""
    return model(cdist(grid.centres, grid.centres))


class FFTCovariance:
    """Products with the covariance matrix of the active cells by circulant embedding.

    The kernel depends on the lag between cell centres only; laid out on a box of twice
    the grid in each direction, the product becomes a cyclic convolution without
    wrap-around, done with real FFTs in blocks of ``block`` vectors.
    """

    def __init__(self, grid: Grid, model: CovarianceModel, block: int = 32) -> None:
        self.grid, self.block = grid, block
        self.shape = (2 * grid.ny, 2 * grid.nx)
        lag_y = np.fft.fftfreq(self.shape[0], d=1.0 / self.shape[0]) * grid.h
        lag_x = np.fft.fftfreq(self.shape[1], d=1.0 / self.shape[1]) * grid.h
        lags = np.hypot(lag_y[:, None], lag_x[None, :])
        self._spectrum = scipy.fft.rfft2(model(lags))

    def matmat(self, X: np.ndarray) -> np.ndarray:
        grid, out = self.grid, np.empty_like(X)
        for start in range(0, X.shape[1], self.block):
            stop = min(start + self.block, X.shape[1])
            box = np.zeros((stop - start, *self.shape))
            box[:, : grid.ny, : grid.nx][:, grid.mask] = X[:, start:stop].T
            product = scipy.fft.irfft2(
                scipy.fft.rfft2(box, workers=-1) * self._spectrum, s=self.shape, workers=-1
            )
            out[:, start:stop] = product[:, : grid.ny, : grid.nx][:, grid.mask].T
        return out


def randomized_eigh(
    matmat, n: int, k: int, *, oversample: int, power_iterations: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Leading ``k`` eigenpairs of a symmetric positive semi-definite operator.

    Subspace iteration from a Gaussian start block of ``k + oversample`` vectors, then a
    Rayleigh-Ritz projection.  Ritz values never exceed the true eigenvalues, so a mode
    count derived from them errs towards keeping more modes.
    """
    width = min(n, k + oversample)
    basis = np.random.default_rng(seed).standard_normal((n, width))
    for _ in range(power_iterations + 1):
        basis, _ = scipy.linalg.qr(
            matmat(basis), mode="economic", overwrite_a=True, check_finite=False
        )
    projected = basis.T @ matmat(basis)
    values, vectors = scipy.linalg.eigh(0.5 * (projected + projected.T))
    order = np.argsort(values)[::-1][:k]
    return values[order], basis @ vectors[:, order]


def _modes_for_fraction(eigenvalues: np.ndarray, total: float, fraction: float) -> int:
    """Smallest count whose eigenvalues sum to at least ``fraction`` of ``total``."""
    reached = np.cumsum(eigenvalues) >= fraction * total * (1.0 - 1e-12)
    return int(np.argmax(reached)) + 1 if reached.any() else len(eigenvalues)


def karhunen_loeve(
    grid: Grid,
    model: CovarianceModel,
    *,
    mean: float = 0.0,
    variance_fraction: float = 0.9,
    max_modes: int | None = None,
    method: str = "auto",
) -> KLExpansion:
    """Truncated KL expansion keeping the fewest modes that carry ``variance_fraction`` of
    the total variance, at most ``max_modes``.

    ``auto`` uses the dense eigensolver up to :data:`DENSE_LIMIT` active cells and the
    randomized FFT solver beyond (which needs ``max_modes``: the size of its subspace).
    Warns when ``max_modes`` stops the expansion short of the requested fraction.
    """
    if method not in KL_METHODS:
        raise ValueError(f"unknown KL method {method!r}; choose one of {KL_METHODS}")
    if not 0.0 < variance_fraction <= 1.0:
        raise PresetError(f"variance_fraction must lie in (0, 1], got {variance_fraction!r}")
    n = grid.n_active
    max_modes = n if max_modes is None else max_modes
    if not 1 <= max_modes <= n:
        raise PresetError(
            f"max_modes must lie between 1 and the {n} active cells, got {max_modes!r}"
        )
    if method == "auto":
        method = "dense" if n <= DENSE_LIMIT else "randomized"
    total = n * model.variance
    if method == "dense":
        values, vectors = scipy.linalg.eigh(
            covariance_matrix(grid, model), overwrite_a=True, check_finite=False
        )
        values, vectors = values[::-1][:max_modes], vectors[:, ::-1][:, :max_modes]
    else:
        fft = FFTCovariance(grid, model)
        values, vectors = randomized_eigh(
            fft.matmat, n, max_modes, oversample=max(20, max_modes // 5), power_iterations=2
        )
    values = np.clip(values, 0.0, None)
    m = _modes_for_fraction(values, total, variance_fraction)
    values, vectors = values[:m], vectors[:, :m]
    # Fix each mode's sign (its largest entry positive) so that datasets are reproducible.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(m)])
    expansion = KLExpansion(
        mean, values.copy(), np.ascontiguousarray(vectors * signs), total, variance_fraction, method
    )
    if expansion.retained_fraction < variance_fraction * (1.0 - 1e-9):
        warnings.warn(
            f"KL expansion stopped at max_modes={max_modes}, retaining "
            f"{expansion.retained_fraction:.4f} of the variance "
            f"instead of the requested {variance_fraction}; raise max_modes to reach it",
            RuntimeWarning,
            stacklevel=2,
        )
    return expansion
