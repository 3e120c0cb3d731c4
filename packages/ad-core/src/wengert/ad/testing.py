"""Numerical derivative checks, for this package's tests and for users' rules.

`check_grads` compares forward mode with central finite differences along a
random direction ``u``, and reverse mode with forward mode through the
identity ``<v, J u> == <J^T v, u>`` for a random cotangent ``v`` (real inner
product ``Re(sum(conj(a) b))``, which is what the complex convention makes
exact). Higher orders check the derivative functions themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._api import is_differentiable, jvp, pullback
from .tree import tree_flatten, tree_map


def _random_like(x: Any, rng: np.random.Generator) -> Any:
    if not is_differentiable(x):
        return None
    shape = np.shape(x)
    r = rng.standard_normal(shape)
    if np.iscomplexobj(x):
        r = r + 1j * rng.standard_normal(shape)
    return np.asarray(r, dtype=np.result_type(x)) if shape else np.result_type(x).type(r)


def _inner(a: Any, b: Any) -> float:
    total = 0.0
    for x, y in zip(tree_flatten(a)[0], tree_flatten(b)[0]):
        if x is None or y is None:
            continue
        total += float(np.real(np.sum(np.conj(np.asarray(x)) * np.asarray(y))))
    return total


def _axpy(alpha: float, u: Any, x: Any) -> Any:
    return tree_map(lambda ui, xi: xi if ui is None else xi + alpha * ui, u, x,
                    is_leaf=lambda v: v is None)


def _tangents_for(args: Sequence[Any], rng: np.random.Generator) -> tuple:
    return tuple(tree_map(lambda x: _random_like(x, rng), a) for a in args)


def _finite_difference(f: Callable, args: tuple, u: tuple, eps: float) -> Any:
    plus = f(*(_axpy(eps, ui, a) for ui, a in zip(u, args)))
    minus = f(*(_axpy(-eps, ui, a) for ui, a in zip(u, args)))
    return tree_map(lambda p, m: (np.asarray(p) - np.asarray(m)) / (2 * eps), plus, minus)


def _assert_close(actual: Any, expected: Any, rtol: float, atol: float, what: str) -> None:
    a_leaves, _ = tree_flatten(actual)
    e_leaves, _ = tree_flatten(expected)
    if len(a_leaves) != len(e_leaves):
        raise AssertionError(f"{what}: {len(a_leaves)} leaves vs {len(e_leaves)} expected")
    for k, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        a = np.zeros_like(np.asarray(e)) if a is None else np.asarray(a)
        np.testing.assert_allclose(a, np.asarray(e), rtol=rtol, atol=atol,
                                   err_msg=f"{what} (output leaf {k})")


def check_grads(f: Callable, args: Sequence[Any], order: int = 1, *,
                modes: Sequence[str] = ("fwd", "rev"), eps: float = 1e-6,
                rtol: float = 1e-6, atol: float = 1e-6, seed: int = 0) -> None:
    """Assert that ``f``'s JVP and VJP at ``args`` match finite differences.

    Use float64 inputs: float32 finite differences are too coarse to judge.
    With ``order=2`` the JVP and VJP functions themselves are checked too.
    """
    args = tuple(args)
    rng = np.random.default_rng(seed)
    u = _tangents_for(args, rng)
    y, dy = jvp(f, args, u)
    dy_fd = _finite_difference(f, args, u, eps)
    if "fwd" in modes:
        _assert_close(dy, dy_fd, rtol, atol, "JVP vs central finite differences")
    if "rev" in modes:
        v = tree_map(lambda yi: _random_like(yi, rng), y)
        _, back = pullback(f, *args)
        cts = back(tree_map(lambda vi, yi: vi if vi is not None or yi is None else
                            np.zeros_like(yi), v, y,
                            is_leaf=lambda t: t is None))
        lhs, rhs = _inner(v, dy_fd), _inner(cts, u)
        scale = max(1.0, abs(lhs), abs(rhs))
        if not abs(lhs - rhs) <= max(atol, rtol) * scale * 10:
            raise AssertionError(f"VJP vs finite differences: <v, J u> = {lhs!r} but "
                                 f"<J^T v, u> = {rhs!r}")
    if order > 1:
        def forward_derivative(*xs: Any) -> Any:
            return jvp(f, xs, u)[1]

        check_grads(forward_derivative, args, order - 1, modes=modes, eps=eps, rtol=rtol,
                    atol=atol, seed=seed + 1)
        if "rev" in modes:
            v = tree_map(lambda yi: _random_like(yi, rng), y)

            def reverse_derivative(*xs: Any) -> Any:
                return pullback(f, *xs)[1](v)

            check_grads(reverse_derivative, args, order - 1, modes=modes, eps=eps, rtol=rtol,
                        atol=atol, seed=seed + 2)

