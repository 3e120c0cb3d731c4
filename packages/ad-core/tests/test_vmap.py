"""`vmap` (issue 15 §4): checked against explicit loops over examples on every
gradient case (which together apply every primitive of the registry), eagerly
and staged; per-example gradients, batched Jacobians and Hessians; a test that
fails when a primitive has no batching rule."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad import batching
from wengert.ad.primitives import registry

from gradient_cases import CASES
from adcore_support import bound

SCALES = (1.0, 0.97, 1.02)   # three examples near each case's point (inside its domain)
# Boolean masks of batched arrays select data-dependent shapes: eager only.
UNSTAGEABLE = {"indexing.setitem[mask]"}
# Functions whose output structure or step count may depend on the values: under vmap
# each example could need another one, so they give the loop's result or refuse
# (ConcretizationError, naming why), never anything else.
VALUE_DEPENDENT = {
    "numpy.real_if_close": "the output dtype depends on the values",
    "numpy.linalg.lstsq": "whether residuals are returned depends on the rank",
    "scipy.integrate.odeint": "adaptive steps chosen from concrete values",
    "scipy.optimize.fixed_point": "iterates on concrete values",
}


def _batch(x):
    if ad.is_differentiable(x) and hasattr(x, "shape"):
        return np.stack([np.asarray(x * s, dtype=np.result_type(x)) for s in SCALES]), 0
    return x, None


def _compare(got, want, where):
    got, want = ad.tree_leaves(got), ad.tree_leaves(want)
    assert len(got) == len(want), where
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12,
                                   err_msg=where)


def test_every_primitive_has_a_batching_rule():
    from wengert.ad.batching_rules import install

    install()
    missing = sorted(set(registry) - set(batching.rules))
    assert not missing, f"primitives without a batching rule: {missing}"


def test_vmap_matches_a_loop_on_every_case(monkeypatch):
    """Each case's function mapped over three examples equals the loop over them; the
    primitives batched along the way must be the whole registry."""
    seen: set[str] = set()
    process = batching.BatchTrace.process

    def spy(self, prim, args, params):
        seen.add(prim.name)
        return process(self, prim, args, params)

    monkeypatch.setattr(batching.BatchTrace, "process", spy)
    failures = []
    for case in CASES:
        if case.id == "indexing.getitem[mask]":  # data-dependent shape: no batched form
            continue
        f = bound(case)
        pairs = [_batch(a) for a in case.args]
        args, axes = [p[0] for p in pairs], tuple(p[1] for p in pairs)
        if all(ax is None for ax in axes):
            continue
        loop = [f(*[a[k] if ax is not None else a for a, ax in zip(args, axes)])
                for k in range(len(SCALES))]
        want = ad.tree_map(lambda *rows: np.stack(rows), *loop)
        try:
            try:
                got = ad.vmap(f, in_axes=axes)(*args)
            except ad.errors.ConcretizationError:
                if case.name in VALUE_DEPENDENT:  # the refusal that names the cause
                    continue
                raise
            _compare(got, want, case.id)
            if case.id not in UNSTAGEABLE:
                staged = ad.make_graph(ad.vmap(f, in_axes=axes), *args)
                _compare(ad.eval_graph(staged, *args), want, f"{case.id} staged")
        except Exception as exc:  # noqa: BLE001  (collect every failing case)
            failures.append(f"{case.id}: {type(exc).__name__}: {exc}"[:300])
    for name, f, args in EXTRA:
        try:
            want = np.stack([f(*[a[k] for a in args]) for k in range(len(args[0]))])
            _compare(ad.vmap(f)(*args), want, name)
            _compare(ad.eval_graph(ad.make_graph(ad.vmap(f), *args), *args), want, name)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    assert not failures, "\n".join(failures)
    never = sorted(set(registry) - seen - set(NOT_REACHED_BY_CASES))
    assert not never, f"primitives no case batched (add a case): {never}"


_R = np.random.default_rng(3)
_F, _I = _R.standard_normal((3, 4, 5)), _R.integers(0, 9, (3, 4, 5))
# Functions with integer or boolean results (no gradient case applies them).
EXTRA = [
    ("argmax", lambda x: wnp.argmax(x, axis=1) + wnp.argmax(x), (_F,)),
    ("argmin", lambda x: wnp.argmin(x, axis=0) + wnp.argmin(x), (_F,)),
    ("argsort", lambda x: wnp.argsort(x, axis=-1), (_F,)),
    ("bitwise", lambda a, b: ((a & b) | 1) * wnp.logical_xor(a < b, a >= b)
     + ((~a ^ b) << 2) + (-a >> 1), (_I, _I[::-1])),
    ("compare", lambda a, b: wnp.logical_xor(a <= b, a != b), (_F, _F[::-1])),
    ("random", lambda k: ad.random.normal(k, (2, 3)) + ad.random.bits(k, (3,), np.uint64) % 7,
     (ad.random.split(ad.random.key(0), 3),)),
]


# Primitives the forward cases do not apply under vmap, and why that is fine.
NOT_REACHED_BY_CASES = {
    "select_and_gather_add": "the JVP of reduce_window_max: reached by test_batched_hessians",
    "select_and_scatter_add": "the VJP of reduce_window_max: reached by per-example grads",
}


def test_per_example_gradients_staged_as_one_program():
    rng = np.random.default_rng(0)
    w, x, y = rng.standard_normal((3, 2)), rng.standard_normal((6, 3)), rng.standard_normal((6, 2))

    def loss(w, x, y):
        return wnp.sum((wnp.tanh(x @ w) - y) ** 2)

    per_example = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))
    want = np.stack([ad.grad(loss)(w, x[i], y[i]) for i in range(6)])
    np.testing.assert_allclose(per_example(w, x, y), want, rtol=1e-12)
    graph = ad.make_graph(per_example, w, x, y)
    assert {e.prim.name for e in graph.eqns}.isdisjoint({"scan", "while"})  # no loop
    np.testing.assert_allclose(ad.eval_graph(graph, w, x, y), want, rtol=1e-12)


def test_batched_jacobians_hessians_and_gram_matrices():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))

    def f(v):
        return wnp.sin(v) * wnp.sum(v ** 2)

    def hess(v):
        return ad.hessian(lambda u: wnp.sum(f(u)), v)

    np.testing.assert_allclose(ad.vmap(ad.jacrev(f))(x),
                               np.stack([ad.jacrev(f)(v) for v in x]), rtol=1e-12)
    np.testing.assert_allclose(ad.vmap(hess)(x), np.stack([hess(v) for v in x]), rtol=1e-12)
    kernel = lambda a, b: wnp.exp(-wnp.sum((a - b) ** 2))  # noqa: E731
    gram = ad.vmap(ad.vmap(kernel, in_axes=(None, 0)), in_axes=(0, None))(x, x)
    np.testing.assert_allclose(gram, [[kernel(a, b) for b in x] for a in x], rtol=1e-12)
    # Pooling's derivatives batched: per-example Hessian-vector products of a max pool.
    import wengert.ad.lax as lax

    pool = lambda v: wnp.sum(lax.reduce_window_max(v.reshape(1, 4, 3, 1) ** 2,  # noqa: E731
                                                   (1, 2, 2, 1), (1, 1, 1, 1)))
    xs = rng.standard_normal((2, 12))
    hv = ad.vmap(lambda v: ad.hvp(pool, v, wnp.ones_like(v)))(xs)
    np.testing.assert_allclose(hv, np.stack([ad.hvp(pool, v, np.ones(12)) for v in xs]),
                               rtol=1e-12)


def test_in_and_out_axes():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(ad.vmap(lambda r: r * 2, in_axes=1, out_axes=1)(x), x * 2)
    np.testing.assert_array_equal(ad.vmap(wnp.sum, in_axes=1)(x), x.sum(0))
    shared = ad.vmap(lambda r, c: (r * c, c), in_axes=(0, None), out_axes=(0, None))
    np.testing.assert_array_equal(shared(x, 2.0)[0], x * 2)
    with pytest.raises(ValueError, match="different sizes"):
        ad.vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
    with pytest.raises(ad.errors.ConcretizationError, match="one value per example"):
        ad.vmap(lambda r: r if r[0] > 0 else -r)(x)


def _conv(x, w, groups=1):
    return registry["conv_general_dilated"].bind(
        x, w, window_strides=(1, 2), padding=((1, 1), (0, 1)), lhs_dilation=(1, 1),
        rhs_dilation=(2, 1), dimension_numbers=((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)),
        feature_group_count=groups)


_VR = np.random.default_rng(11)
_X, _W = _VR.standard_normal((3, 2, 7, 6, 4)), _VR.standard_normal((3, 3, 2, 4, 6))
_A = _VR.standard_normal((3, 4, 4)) + 4 * np.eye(4)
_B, _BM = _VR.standard_normal((3, 4)), _VR.standard_normal((3, 4, 2))
# (function, arguments, in_axes, whether the staged batch may keep a scan)
FOLDED = {
    "conv, batched input": (_conv, (_X, _W[0]), (0, None), False),
    "conv, batched kernel": (_conv, (_X[0], _W), (None, 0), False),
    "grouped conv, batched input": (lambda x, w: _conv(x, w[..., :2, :], 2), (_X, _W[0]),
                                    (0, None), False),
    "conv, both batched (per-example kernels: one scan)": (_conv, (_X, _W), (0, 0), True),
    "solve, shared matrix, vectors": (wnp.linalg.solve, (_A[0], _B), (None, 0), False),
    "solve, shared matrix, matrices": (wnp.linalg.solve, (_A[0], _BM), (None, 0), False),
    "solve, batched matrix, shared vector": (wnp.linalg.solve, (_A, _B[0]), (0, None), False),
    "solve, both batched, vectors": (wnp.linalg.solve, (_A, _B), (0, 0), False),
    "solve, both batched, matrices": (wnp.linalg.solve, (_A, _BM), (0, 0), False),
}


@pytest.mark.parametrize("name", sorted(FOLDED))
def test_convolution_and_solve_batch_without_a_loop(name):
    """Folded into an axis the operation maps over already (the convolution's batch or
    output features, the solve's right-hand sides): equal to a loop over examples,
    eagerly and staged, and staged without a scan."""
    f, args, axes, may_scan = FOLDED[name]
    size = next(a.shape[0] for a, ax in zip(args, axes) if ax is not None)
    want = np.stack([f(*[a[k] if ax is not None else a for a, ax in zip(args, axes)])
                     for k in range(size)])
    np.testing.assert_allclose(ad.vmap(f, in_axes=axes)(*args), want, rtol=1e-10, atol=1e-12)
    graph = ad.make_graph(ad.vmap(f, in_axes=axes), *args)
    np.testing.assert_allclose(ad.eval_graph(graph, *args), want, rtol=1e-10, atol=1e-12)
    assert may_scan or "scan" not in {e.prim.name for e in graph.eqns}, str(graph)
