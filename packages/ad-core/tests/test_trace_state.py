"""The interpreter stack's state: one per thread, tracers that outlive their
transformation refused, and conversions to Python numbers that would drop a
derivative refused."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.errors import DerivativeDroppedError, EscapedTracerError


# ---- threads -----------------------------------------------------------------------------------
def _work(seed: int) -> list:
    """Nested transformations with many primitives, so threads interleave inside them."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((6, 6)) / 3
    x = rng.standard_normal(6)

    def f(w, x):
        for _ in range(20):
            x = wnp.tanh(w @ x) + 0.1 * x
        return wnp.sum(x ** 2)

    out = list(ad.gradient(f, w, x))
    out.append(ad.hvp(lambda x: f(w, x), x, np.ones(6)))
    out.append(ad.jacfwd(lambda x: wnp.sin(w @ x))(x))
    return out


def test_threads_differentiating_at_once_get_the_serial_results():
    seeds = list(range(8))
    serial = {s: _work(s) for s in seeds}
    results: dict = {}
    errors: list = []
    start = threading.Barrier(len(seeds))

    def run(seed: int) -> None:
        start.wait()
        try:
            for _ in range(3):
                results.setdefault(seed, []).append(_work(seed))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    for s in seeds:
        for got in results[s]:
            for a, b in zip(got, serial[s]):
                np.testing.assert_array_equal(a, b)


def test_a_transformation_exited_out_of_order_raises_even_without_asserts():
    from wengert.ad._core import Trace, trace_level

    outer, inner = trace_level(Trace()), trace_level(Trace())
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="trace stack is corrupted"):
        outer.__exit__(None, None, None)
    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)


# ---- escaped tracers -----------------------------------------------------------------------------
def test_a_tracer_of_a_finished_trace_is_refused_by_name():
    leaked = []

    def f(x):
        leaked.append(x)
        return wnp.sum(x ** 2)

    ad.gradient(f, np.ones(3))
    with pytest.raises(EscapedTracerError, match="sin.*ReverseTrace.*already returned"):
        wnp.sin(leaked[0])
    # ... also when it meets a live trace (it must not join that tape silently).
    with pytest.raises(EscapedTracerError):
        ad.gradient(lambda y: wnp.sum(y * leaked[0]), np.ones(3))


def test_an_escaped_tracer_reaching_a_custom_rule_or_checkpoint_is_refused():
    leaked = []
    ad.gradient(lambda x: leaked.append(x) or x * 2.0, 1.0)

    @ad.adjoint
    def double(x):
        return 2 * x, lambda g: (2 * g,)

    with pytest.raises(EscapedTracerError, match="custom rule"):
        double(leaked[0])
    with pytest.raises(EscapedTracerError):
        ad.gradient(lambda y: ad.checkpoint(lambda z: z * leaked[0])(y), 1.0)


def test_an_escaped_forward_tracer_is_refused():
    leaked = []
    ad.jvp(lambda x: leaked.append(x) or x * 2, (1.0,), (1.0,))
    with pytest.raises(EscapedTracerError, match="JVPTrace"):
        leaked[0] * 3.0


# ---- conversions that would drop a derivative -------------------------------------------------------
@pytest.mark.parametrize("convert", [float, math.sin, complex, lambda x: x.item(),
                                     lambda x: x.tolist()],
                         ids=["float", "math.sin", "complex", "item", "tolist"])
def test_converting_a_differentiated_float_to_a_number_is_refused(convert):
    with pytest.raises(DerivativeDroppedError, match="stop_gradient"):
        ad.gradient(lambda x: convert(x) + 0 * x, 1.0)
    with pytest.raises(DerivativeDroppedError):
        ad.jvp(lambda x: convert(x) + 0 * x, (1.0,), (1.0,))


def test_control_flow_conversions_and_constants_stay_allowed():
    def f(x):
        n = int(x)                      # control flow: allowed
        if x > 1.5 and bool(x < 10):    # bool(): allowed
            x = x * n
        return x * np.arange(4)[n] + float(ad.stop_gradient(x))  # index, explicit constant

    g = ad.gradient(f, 2.0)[0]
    assert g == 4.0  # d/dx of 2x * 2 + constant
    # math.floor/ceil/trunc are piecewise constant too
    assert ad.gradient(lambda x: x * (math.floor(x) + math.ceil(x) + math.trunc(x)), 2.5) == (7.0,)
