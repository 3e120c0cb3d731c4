"""Structured control flow: eager (plain Python, taped step by step) and staged
(one equation, with staged JVP/VJP rules) must agree in values and
derivatives; derivatives are checked against finite differences."""

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.primitives.control import MaxStepsExceeded
from wengert.ad.primitives.dynamic import dynamic_slice, dynamic_update_slice
from wengert.ad.testing import check_grads

TIGHT = dict(rtol=1e-10, atol=1e-12)


# ---- programs with data-dependent trip counts ------------------------------------------------
def newton_sqrt(a, checkpoint_every=None):
    """Newton's iteration for sqrt(a) to a tolerance."""
    return ad.while_loop(lambda x: wnp.abs(x * x - a) > 1e-13 * a, lambda x: 0.5 * (x + a / x),
                         a, max_steps=60, checkpoint_every=checkpoint_every)


def bisection_root(p):
    """Root of x**3 + x - p: bisection to a bracket of 1e-3, then one secant step."""
    def g(x):
        return x * x * x + x - p

    def body(c):
        lo, hi = c
        mid = 0.5 * (lo + hi)
        return ad.cond(g(mid) > 0, lambda: (lo, mid), lambda: (mid, hi))

    lo, hi = ad.while_loop(lambda c: c[1] - c[0] > 1e-3, body,
                           (np.float64(0.0), np.float64(4.0)), max_steps=40)
    return lo - g(lo) * (hi - lo) / (g(hi) - g(lo))


def adaptive_ode(p, checkpoint_every=None):
    """y' = -p y + sin(t) on [0, 2] with an adaptive Heun-Euler pair (accept/reject by cond)."""
    def f(t, y):
        return -p * y + wnp.sin(t)

    def body(c):
        t, y, h, n = c
        h = wnp.minimum(h, 2.0 - t)
        k1 = f(t, y)
        y_euler = y + h * k1
        y_heun = y + 0.5 * h * (k1 + f(t + h, y_euler))
        err = wnp.abs(y_heun - y_euler) + 1e-300
        factor = wnp.clip(0.9 * wnp.sqrt(1e-5 / err), 0.2, 5.0)
        t, y = ad.cond(err < 1e-5, lambda: (t + h, y_heun), lambda: (t, y))
        return t, y, h * factor, n + 1

    t, y, h, n = ad.while_loop(lambda c: c[0] < 2.0 - 1e-12, body,
                               (np.float64(0.0), np.float64(1.0), np.float64(0.1), 0),
                               max_steps=400, checkpoint_every=checkpoint_every)
    return y


def nested_loops(w):
    def outer(c):
        i, s = c
        inner = ad.fori_loop(0, 3, lambda j, t: t * wnp.cos(w * j + s), 1.0 + s)
        return i + 1, s + inner * w

    return ad.while_loop(lambda c: c[0] < 4, outer, (0, w), max_steps=8)[1]


def cond_in_scan(w, checkpoint_every=None):
    def step(c, x):
        c = ad.cond(c > 0, lambda c: c * wnp.sin(w * x), lambda c: c + w * x, c)
        return c, c * c

    c, ys = ad.scan(step, np.float64(0.3), np.linspace(-1, 1, 6),
                    checkpoint_every=checkpoint_every)
    return c + ys.sum()


def scan_of_vectors(w):
    """A vector carry, vector rows, a tree of xs, reverse order: an RNN-like recurrence."""
    def step(h, x):
        h = wnp.tanh(w @ h + x["a"] * x["b"])
        return h, wnp.sum(h * h)

    xs = {"a": np.linspace(0.1, 1.0, 15).reshape(5, 3), "b": np.arange(5.0)[:, None] / 5}
    h, ys = ad.scan(step, np.ones(3), xs, reverse=True)
    return wnp.sum(h) + wnp.sum(ys)


PROGRAMS = [
    (newton_sqrt, np.array(2.0)),
    (bisection_root, np.array(3.0)),
    (adaptive_ode, np.array(0.8)),
    (nested_loops, np.array(0.7)),
    (cond_in_scan, np.array(1.3)),
    (scan_of_vectors, np.array([[0.3, -0.2, 0.1], [0.0, 0.4, -0.3], [0.2, 0.1, 0.5]])),
]
IDS = [f.__name__ for f, _ in PROGRAMS]


def staged(f, *example):
    graph = ad.make_graph(f, *example)
    return lambda *args: ad.eval_graph(graph, *args)


def scalar_sum(f):
    return lambda x: wnp.sum(f(x))


@pytest.mark.parametrize("f,x", PROGRAMS, ids=IDS)
def test_staged_value_and_gradient_match_eager(f, x):
    np.testing.assert_allclose(staged(f, x)(x), f(x), **TIGHT)
    g_eager = ad.grad(scalar_sum(f))(x)
    g_staged = staged(ad.grad(scalar_sum(f)), x)(x)          # VJP rules, staged
    g_of_staged = ad.grad(scalar_sum(staged(f, x)))(x)       # VJP rules, run eagerly
    np.testing.assert_allclose(g_staged, g_eager, **TIGHT)
    np.testing.assert_allclose(g_of_staged, g_eager, **TIGHT)


@pytest.mark.parametrize("f,x", PROGRAMS, ids=IDS)
def test_staged_derivatives_match_finite_differences(f, x):
    check_grads(staged(f, x), (x,), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f,x", [PROGRAMS[0], PROGRAMS[3], PROGRAMS[4]], ids=IDS[0:1] + IDS[3:5])
def test_second_order_through_staged_loops(f, x):
    h_eager = ad.grad(ad.grad(f))(x)
    np.testing.assert_allclose(staged(ad.grad(ad.grad(f)), x)(x), h_eager, **TIGHT)
    # forward over the staged reverse rules
    np.testing.assert_allclose(ad.jvp(ad.grad(staged(f, x)), (x,), (np.ones_like(x),))[1],
                               h_eager, **TIGHT)
    check_grads(staged(f, x), (x,), order=2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("f,x,k", [(newton_sqrt, np.array(2.0), 2),
                                   (adaptive_ode, np.array(0.8), 5),
                                   (cond_in_scan, np.array(1.3), 4)], ids=["newton", "ode", "scan"])
def test_checkpoint_every_gives_identical_gradients(f, x, k):
    expected = ad.grad(f)(x)
    np.testing.assert_allclose(staged(ad.grad(lambda v: f(v, checkpoint_every=k)), x)(x),
                               expected, **TIGHT)
    np.testing.assert_allclose(ad.grad(lambda v: f(v, checkpoint_every=k))(x), expected, **TIGHT)


# ---- the staged structure ----------------------------------------------------------------------
def count(graph, name):
    return sum(1 for p in graph.primitives() if p.name == name)


def test_staged_loops_are_one_equation_and_their_vjp_is_not_unrolled():
    def f(x, n):
        return ad.fori_loop(0, n, lambda i, c: wnp.sin(c) * x, x)

    def g(x, steps):
        return ad.while_loop(lambda c: c[0] < steps, lambda c: (c[0] + 1, wnp.sin(c[1]) * x),
                             (0, x), max_steps=1000)[1]

    x = np.array(0.5)
    # A static trip count gives a scan; a traced one (Python ints are traced) a while.
    assert [e.prim.name for e in ad.make_graph(f, x, 10, static_argnums=1).eqns] == ["scan"]
    assert [e.prim.name for e in ad.make_graph(f, x, 10).eqns] == ["while"]
    assert [e.prim.name for e in ad.make_graph(g, x, 10, static_argnums=1).eqns] == ["while"]
    small, large = (ad.make_graph(ad.grad(g), x, n, static_argnums=1) for n in (3, 300))
    assert len(list(small.primitives())) == len(list(large.primitives()))
    assert count(large, "dynamic_update_slice") >= 1 and count(large, "sin") <= 4
    np.testing.assert_allclose(ad.eval_graph(large, x, 300), ad.grad(g)(x, 300), **TIGHT)


def test_closed_over_staged_values_become_operands():
    def f(x, w):
        return ad.while_loop(lambda c: c < 10.0, lambda c: c * w + x, x, max_steps=50)

    x, w = np.array(0.5), np.array(1.5)
    graph = ad.make_graph(f, x, w)
    (eqn,) = graph.eqns
    assert eqn.params["n_consts"] == 2 and len(eqn.inputs) == 3
    np.testing.assert_allclose(ad.eval_graph(graph, x, w), f(x, w), **TIGHT)
    np.testing.assert_allclose(ad.gradient(lambda a, b: ad.eval_graph(graph, a, b), x, w),
                               ad.gradient(f, x, w), **TIGHT)


def test_staged_jvp_of_loops_matches_eager():
    for f, x in PROGRAMS:
        t = np.ones_like(x)
        expected = ad.jvp(f, (x,), (t,))
        got = staged(lambda v, dv: ad.jvp(f, (v,), (dv,)), x, t)(x, t)
        np.testing.assert_allclose(got[0], expected[0], **TIGHT)
        np.testing.assert_allclose(got[1], expected[1], **TIGHT)


# ---- semantics and errors ------------------------------------------------------------------------
def test_max_steps_is_a_run_time_error_eager_and_staged():
    def f(x):
        return ad.while_loop(lambda c: c < 100.0, lambda c: c * 2.0, x, max_steps=5)

    with pytest.raises(MaxStepsExceeded, match="max_steps=5"):
        f(np.array(1.0))
    graph = ad.make_graph(ad.grad(f), np.array(1.0))
    np.testing.assert_allclose(ad.eval_graph(graph, np.array(40.0)), 4.0)
    with pytest.raises(MaxStepsExceeded, match="max_steps=5"):
        ad.eval_graph(graph, np.array(1.0))


def test_reverse_mode_of_a_staged_while_needs_max_steps():
    def f(x):
        return ad.while_loop(lambda c: c < 100.0, lambda c: c * 2.0, x)

    np.testing.assert_allclose(ad.grad(f)(np.array(3.0)), 64.0)   # eager: the tape unrolls
    with pytest.raises(ValueError, match="max_steps"):
        ad.make_graph(ad.grad(f), np.array(3.0))


def test_carry_type_changes_are_reported():
    with pytest.raises(TypeError, match="leaf 0 is float32"):
        ad.make_graph(lambda x: ad.while_loop(lambda c: c < 1, lambda c: c.astype(np.float32), x),
                      np.array(0.0))
    with pytest.raises(TypeError, match="structure"):
        ad.make_graph(lambda x: ad.while_loop(lambda c: c[0] < 1, lambda c: c[0], (x, x)),
                      np.array(0.0))
    with pytest.raises(TypeError, match="branch"):
        ad.make_graph(lambda x: ad.cond(x > 0, lambda: x, lambda: wnp.stack([x, x])),
                      np.array(0.0))


def test_eager_control_flow_is_plain_python():
    calls = []

    def f(x):
        calls.append(1)
        return x + 1.0

    assert ad.cond(True, f, lambda x: x, 1.0) == 2.0 and len(calls) == 1
    assert ad.while_loop(lambda c: c < 3, lambda c: c + 1, 0) == 3
    assert ad.fori_loop(2, 5, lambda i, c: c + [i], []) == [2, 3, 4]
    carry, ys = ad.scan(lambda c, x: (c + x, None), 0.0, np.arange(4.0))
    assert carry == 6.0 and ys is None
    carry, ys = ad.scan(lambda c, x: (c, c * x), 2.0, np.zeros((0, 3)))
    assert ys.shape == (0, 3)


def test_fori_loop_with_staged_bounds_and_scan_of_length_zero():
    def f(x, n):
        return ad.fori_loop(0, n, lambda i, c: c * x, np.float64(1.0), max_steps=10)

    graph = ad.make_graph(f, np.array(2.0), np.array(3))
    assert [e.prim.name for e in graph.eqns] == ["while"]
    np.testing.assert_allclose(ad.eval_graph(graph, np.array(2.0), np.array(5)), 32.0)
    np.testing.assert_allclose(
        ad.grad(lambda x: ad.eval_graph(graph, x, np.array(3)))(np.array(2.0)), 12.0)
    empty = ad.make_graph(lambda x: ad.scan(lambda c, r: (c + r, 2 * r), x, np.zeros((0,))),
                          np.array(1.0))
    carry, ys = ad.eval_graph(empty, np.array(1.0))
    assert carry == 1.0 and ys.shape == (0,)


def test_loop_buffers_updated_in_place_do_not_alias_inputs():
    def push(stack):
        return ad.fori_loop(0, 4, lambda i, s: dynamic_update_slice(
            s, dynamic_slice(s, (i,), (1,)) + 1.0, (i,)),
                            stack)

    def record(stack):
        return ad.while_loop(lambda c: c[0] < 4, lambda c: (
            c[0] + 1, dynamic_update_slice(c[1], wnp.reshape(c[0] * 1.0, (1,)), (c[0],))),
            (0, stack))[1]

    stack = np.zeros(4)
    graph = ad.make_graph(record, stack)
    np.testing.assert_array_equal(ad.eval_graph(graph, stack), [0, 1, 2, 3])
    np.testing.assert_array_equal(stack, 0)
    np.testing.assert_array_equal(ad.eval_graph(ad.make_graph(push, stack), stack), 1)
    np.testing.assert_array_equal(stack, 0)


# ---- dynamic indexing primitives -----------------------------------------------------------------
def test_dynamic_slice_and_update_rules():
    rng = np.random.default_rng(0)
    x, u = rng.standard_normal((5, 4)), rng.standard_normal((2, 3))
    for start in [(1, 0), (4, 3), (-2, 1)]:   # clamped like XLA
        i, j = min(max(start[0], 0), 3), min(max(start[1], 0), 1)
        np.testing.assert_array_equal(dynamic_slice(x, start, (2, 3)), x[i:i + 2, j:j + 3])
        expected = x.copy()
        expected[i:i + 2, j:j + 3] = u
        np.testing.assert_array_equal(dynamic_update_slice(x, u, start), expected)
        check_grads(lambda a: dynamic_slice(a, start, (2, 3)), (x,), order=2)
        check_grads(lambda a, b: dynamic_update_slice(a, b, start), (x, u), order=2)
    graph = ad.make_graph(lambda a, k: dynamic_slice(a, (k, 0), (2, 4)), x, np.array(2))
    np.testing.assert_array_equal(ad.eval_graph(graph, x, np.array(3)), x[3:5])


# ---- CuPy (skipped without a CUDA device) -------------------------------------------------------
ON_GPU = dict(rtol=1e-8, atol=1e-11)   # GPU transcendental functions round differently


@pytest.mark.gpu
@pytest.mark.parametrize("f,x", PROGRAMS, ids=IDS)
def test_staged_loops_run_and_differentiate_on_cupy(f, x):
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no CUDA device")
    except Exception as exc:  # no driver
        pytest.skip(f"CUDA is unusable here: {exc}")
    xc = cupy.asarray(x)
    graph = ad.make_graph(f, x)
    out = ad.eval_graph(graph, xc)
    assert isinstance(out, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(out), f(x), **ON_GPU)
    expected = ad.grad(scalar_sum(f))(x)
    staged_grad = ad.eval_graph(ad.make_graph(ad.grad(scalar_sum(f)), x), xc)
    np.testing.assert_allclose(cupy.asnumpy(staged_grad), expected, **ON_GPU)
    g = ad.grad(scalar_sum(lambda v: ad.eval_graph(graph, v)))(xc)
    np.testing.assert_allclose(cupy.asnumpy(g), expected, **ON_GPU)
