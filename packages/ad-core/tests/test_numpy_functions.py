"""NumPy functions that ordinary programs call (issue 10): unmodified NumPy code reaches
them through NEP-18 on traced values and gets NumPy's values; what no protocol can
intercept fails naming the differentiable twin; staging never runs LAPACK."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.errors import TracerArrayConversionError

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((2, 3, 4))


def _row_stack(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # NumPy's own deprecation
        return np.row_stack([x, 2 * x])


# Plain NumPy programs: each must give NumPy's value when its input is traced.
PROGRAMS = {
    "rot90": lambda x: np.rot90(x, 3, axes=(2, 0)),
    "rollaxis": lambda x: np.rollaxis(x, 2, 1),
    "vsplit": lambda x: np.vsplit(x, 2)[1],
    "hsplit": lambda x: np.hsplit(x, [1, 2])[2],
    "dsplit": lambda x: np.dsplit(x, 2)[0],
    "row_stack": _row_stack,
    "gradient": lambda x: np.gradient(x, 0.5, axis=(1, 2))[1],
    "gradient-coordinates": lambda x: np.gradient(x, np.array([0.0, 0.4, 1.1, 1.5]), axis=-1,
                                                  edge_order=2),
    "partition": lambda x: np.sort(np.partition(x, 1, axis=-1), axis=-1),
    "diagonal": lambda x: np.diagonal(x, 1, 1, 2),
    "real_if_close": lambda x: np.real_if_close(x + 0j),
    "eig": lambda x: np.linalg.eig(x[0, :, :3]).eigenvalues,
    "qr": lambda x: np.linalg.qr(x[0].T)[1],
    "lstsq": lambda x: np.linalg.lstsq(x[0].T, x[1, 0])[0],
    "pinv": lambda x: np.linalg.pinv(x[1]),
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_unmodified_numpy_code_runs_on_tracers(name: str) -> None:
    program = PROGRAMS[name]
    expected = program(Y)
    got, back = ad.pullback(program, Y)
    assert got.dtype == np.asarray(expected).dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    (g,) = back(np.ones_like(got))
    assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_r_and_c_follow_numpy_layout() -> None:
    a, b = X[0], X[1]
    for key in ((a, 0.5, b), ("0,2", a, b), ("0,2,0", a, b), ("1", X, X), (a, slice(0, 3))):
        np.testing.assert_array_equal(wnp.r_[key], np.r_[key])
    np.testing.assert_array_equal(wnp.c_[a, b], np.c_[a, b])
    np.testing.assert_array_equal(wnp.c_[X, X[:, :1]], np.c_[X, X[:, :1]])
    (g,) = ad.gradient(lambda x: wnp.sum(wnp.c_[x[0], x[1]] ** 2), X)
    np.testing.assert_allclose(g[:2], 2 * X[:2])


def test_np_r_on_a_tracer_names_the_twin() -> None:
    with pytest.raises(TracerArrayConversionError, match=r"wengert\.ad\.numpy\.r_"):
        ad.gradient(lambda x: np.sum(np.r_[x, x]), X[0])


def test_plain_scipy_function_names_the_twin() -> None:
    special = pytest.importorskip("scipy.special")
    with pytest.raises(TracerArrayConversionError,
                       match=r"wengert\.ad\.scipy\.special\.logsumexp"):
        ad.gradient(lambda x: special.logsumexp(x), X[0])


def test_allclose_and_real_if_close_decide_on_values() -> None:
    assert wnp.allclose(X, X + 1e-12) is True
    assert ad.gradient(lambda x: wnp.sum(x) * float(np.allclose(x, 2 * x)), X)[0].max() == 0
    z = X + 1e-3j
    assert np.real_if_close(z).dtype.kind == "c" and wnp.real_if_close(z).dtype.kind == "c"
    seen = []
    ad.gradient(lambda x: seen.append(np.real_if_close(x + 0j).dtype) or wnp.sum(x), X)
    assert seen == [np.dtype(np.float64)]


def test_eig_is_complex_when_numpy_says_so_and_its_gauge_is_numpys() -> None:
    rotation = np.array([[0.0, -1.0], [1.0, 0.1]])
    w, v = wnp.linalg.eig(rotation)
    w_np, v_np = np.linalg.eig(rotation)
    assert w.dtype == w_np.dtype == np.complex128
    np.testing.assert_allclose(v, v_np)
    w, v = wnp.linalg.eig(X[:, :3] + X[:, :3].T)
    assert w.dtype == np.float64  # all eigenvalues real: NumPy returns real arrays


@pytest.mark.parametrize("mode,shape", [("complete", (4, 3)), ("reduced", (2, 3))])
def test_qr_refuses_what_has_no_derivative(mode: str, shape: tuple) -> None:
    with pytest.raises(NotImplementedError, match="not unique"):
        wnp.linalg.qr(np.ones(shape), mode=mode)


def test_staging_factorizations_runs_no_lapack(monkeypatch: pytest.MonkeyPatch) -> None:
    def program(a):
        sign, logdet = wnp.linalg.slogdet(a)
        w, v = wnp.linalg.eigh(a)
        u, s, vh = wnp.linalg.svd(a[:, :2], full_matrices=False)
        ew, ev = wnp.linalg.eig(a)
        q, r = wnp.linalg.qr(a)
        return logdet + wnp.sum(w) + wnp.sum(s) + wnp.sum(wnp.real(ew)) + wnp.sum(r)

    a = X[:, :3] @ X[:, :3].T + 3 * np.eye(3)
    expected = program(a)

    def lapack(*args, **kwargs):
        raise AssertionError("LAPACK ran while staging")

    with monkeypatch.context() as m:
        for name in ("slogdet", "eigh", "svd", "eig", "qr"):
            m.setattr(np.linalg, name, lapack)
        graph = ad.make_graph(ad.grad(program), a)
    np.testing.assert_allclose(ad.eval_graph(graph, a), ad.grad(program)(a), rtol=1e-10)
    assert np.isfinite(expected)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack_matches_numpy_and_refuses_unequal_shapes(axis: int) -> None:
    parts = [Y[0], Y[1], 2 * Y[0]]
    np.testing.assert_array_equal(wnp.stack(parts, axis=axis), np.stack(parts, axis=axis))
    (g,) = ad.gradient(lambda x: wnp.sum(wnp.stack([x, 2 * x], axis=axis) ** 2), Y[0])
    np.testing.assert_allclose(g, 10 * Y[0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"same shape, got \(3, 4\) and \(4,\)"):
        wnp.stack([Y[0], Y[0, 0]], axis=0)
    with pytest.raises(ValueError, match="at least one array"):
        wnp.stack([], axis=axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_pullback_sums_repeated_rows_as_add_at_does(dtype) -> None:
    """An embedding's gradient (rows gathered by a repeated integer array, large
    enough for the sparse-product path): bitwise NumPy's ``add.at``; an indexed
    add into a nonzero array equal to rounding."""
    table = RNG.standard_normal((300, 40)).astype(dtype)
    rows = RNG.integers(-300, 300, (30, 20))
    g = RNG.standard_normal((30, 20, 40)).astype(dtype)
    (got,) = ad.pullback(lambda t: t[rows], table)[1](g)
    expected = np.zeros_like(table)
    np.add.at(expected, rows, g)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    added = ad.pullback(lambda t: t.at[rows].add(g), table)[0]
    np.add.at(table, rows, g)
    np.testing.assert_allclose(added, table, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5)
