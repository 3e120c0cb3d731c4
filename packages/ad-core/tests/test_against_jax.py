"""The gradient cases replayed in JAX, an independent AD: values must agree, and
so must the VJP of a random cotangent. JAX's complex VJPs are linear rather than
conjugate-linear, so ours equals ``conj(jax_vjp(conj(v)))``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import wengert.ad as ad

from gradient_cases import CASES, Case, resolve
from adcore_support import bound, random_like

jax = pytest.importorskip("jax", reason="jax is not installed: gradients are checked against "
                          "finite differences only (pip install jax for the second opinion)")
jnp = jax.numpy

# Our names whose JAX counterpart is spelled differently.
JAX_NAMES = {"scipy.special.psi": "scipy.special.digamma",
             "numpy.logsumexp": "scipy.special.logsumexp"}


@pytest.fixture(scope="module", autouse=True)
def float64_jax() -> Iterator[None]:
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _replayed() -> list[Case]:
    """One case per name, plus every complex case (where conventions differ): JAX compiles
    each replay, so replaying all shapes would cost minutes and add little."""
    seen: set[str] = set()
    out = []
    for c in CASES:
        if c.jax and (c.name not in seen or "complex" in c.label):
            seen.add(c.name)
            out.append(c)
    return out


@pytest.mark.parametrize("case", _replayed(), ids=lambda c: c.id)
def test_matches_jax(case: Case) -> None:
    name = JAX_NAMES.get(case.name, case.name)
    try:
        jax_op = resolve(name, root="jax")
    except (AttributeError, ImportError):
        pytest.skip(f"jax {jax.__version__} has no {name}")
    args = case.args
    y, back = ad.pullback(bound(case), *args)
    ours, treedef = ad.tree_flatten(y)
    v = random_like(ours, np.random.default_rng(1))
    cts = back(ad.tree_unflatten(treedef, v))

    @jax.jit  # one compilation per case instead of one per operation
    def replay(jax_args, v):
        y_jax, jax_back = jax.vjp(lambda *a: case.fn(jax_op, jnp, *a), *jax_args)
        cotangent = jax.tree.unflatten(jax.tree.structure(y_jax), [jnp.conj(x) for x in v])
        return jax.tree.leaves(y_jax), jax_back(cotangent)

    theirs, jax_cts = replay(tuple(jnp.asarray(a) for a in args), v)
    assert len(ours) == len(theirs), f"{len(ours)} outputs, JAX gives {len(theirs)}"
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-10,
                                   err_msg=f"value, output {k}")
    for k, (a, b) in enumerate(zip(cts, jax_cts)):
        np.testing.assert_allclose(np.asarray(a), np.conj(np.asarray(b)), rtol=1e-8,
                                   atol=1e-10, err_msg=f"cotangent of argument {k}")
