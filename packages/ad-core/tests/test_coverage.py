"""The suite must keep up with the code: every differentiable primitive in
`wengert.ad.primitives.registry` must be differentiated by some gradient case,
and every public function of `wengert.ad.numpy` (with ``.linalg`` and ``.fft``)
and `wengert.ad.scipy.special` must have a case, unless it is exempt below
for a stated reason. Adding a primitive or a function without a case fails here.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.ad.scipy as wsc
import wengert.ad.scipy.special as wsp
from wengert.ad._forward import JVPTrace
from wengert.ad._reverse import ReverseTrace

from gradient_cases import CASES
from adcore_support import bound, random_like

# Callables with nothing to differentiate. (Classes, dtypes, constants and submodules
# are skipped by kind: they are not functions of arrays.)
EXEMPT = {
    **dict.fromkeys(
        ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
         "logical_or", "logical_xor", "logical_not", "isfinite", "isnan", "isinf", "all", "any",
         "isclose", "allclose", "iscomplex", "isreal"], "boolean result"),
    **dict.fromkeys(["argmax", "argmin", "argsort", "argpartition", "count_nonzero",
                     "linalg.matrix_rank"], "integer result"),
    **dict.fromkeys(["bitwise_and", "bitwise_or", "bitwise_xor", "invert", "bitwise_not",
                     "bitwise_invert", "left_shift", "right_shift", "bitwise_left_shift",
                     "bitwise_right_shift"], "integers and booleans only"),
    **dict.fromkeys(["shape", "ndim", "size", "result_type", "iscomplexobj", "isrealobj"],
                    "describes an array, returns no array"),
    **dict.fromkeys(["arange", "empty", "empty_like", "eye", "identity", "ones", "ones_like",
                     "zeros", "zeros_like", "fft.fftfreq", "fft.rfftfreq"],
                    "creates a constant from shapes and dtypes"),
}
EXEMPT = {f"numpy.{name}": reason for name, reason in EXEMPT.items()}
EXEMPT["scipy.stats.multivariate_normal.cdf"] = ("numerical integration without a rule: "
                                                  "refused by name (test_scipy checks it)")

# Differentiable primitives that finite differences cannot judge.
EXEMPT_PRIMITIVES = {
    "stop_gradient": "its derivative is zero by definition, not by calculus; "
                     "test_semantics checks it",
}


def public_functions(module: ModuleType, prefix: str) -> set[str]:
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    out = set()
    for name in names:
        obj = getattr(module, name)
        if callable(obj) and not isinstance(obj, type) and not inspect.ismodule(obj):
            out.add(f"{prefix}.{name}")
    return out


def all_public_functions() -> set[str]:
    scipy_modules = {"scipy.special": wsp, "scipy.signal": wsc.signal,
                     "scipy.integrate": wsc.integrate, "scipy.optimize": wsc.optimize,
                     **{f"scipy.stats.{name}": getattr(wsc.stats, name)
                        for name in wsc.stats.__all__}}
    out = (public_functions(wnp, "numpy") | public_functions(wnp.linalg, "numpy.linalg")
           | public_functions(wnp.fft, "numpy.fft"))
    for prefix, module in scipy_modules.items():
        out |= public_functions(module, prefix)
    return out


def test_every_public_function_has_a_gradient_case() -> None:
    covered = {c.name for c in CASES}
    missing = sorted(all_public_functions() - covered - set(EXEMPT))
    assert not missing, f"public functions without a gradient case: {missing}"


def test_exemptions_are_current() -> None:
    public = all_public_functions()
    stale = sorted(name for name in EXEMPT if name not in public)
    assert not stale, f"exempt names that are no longer public: {stale}"
    both = sorted(set(EXEMPT) & {c.name for c in CASES})
    assert not both, f"names both exempt and tested (drop the exemption): {both}"
    registry = ad.primitives.registry
    stale = sorted(n for n in EXEMPT_PRIMITIVES if n not in registry)
    assert not stale, f"exempt primitives that no longer exist: {stale}"


@pytest.fixture
def processed(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Names of the primitives that a trace processes (i.e. differentiates)."""
    seen: set[str] = set()
    for trace in (JVPTrace, ReverseTrace):
        original = trace.process

        def recording(self, prim, args, params, _original=original):
            seen.add(prim.name)
            return _original(self, prim, args, params)

        monkeypatch.setattr(trace, "process", recording)
    yield seen


def test_every_differentiable_primitive_has_a_gradient_case(processed: set[str]) -> None:
    rng = np.random.default_rng(0)
    for case in CASES:
        f = bound(case)
        u = random_like(case.args, rng)
        y, back = ad.pullback(f, *case.args)
        v = random_like(y, rng)
        ad.jvp(f, case.args, u)
        back(v)
        if case.order2:  # the rules themselves traced, as check_grads(order=2) does
            ad.jvp(lambda *xs: ad.pullback(f, *xs)[1](v), case.args, u)
            ad.pullback(lambda *xs: ad.jvp(f, xs, u)[1], *case.args)
    differentiable = {n for n, p in ad.primitives.registry.items() if p.differentiable}
    missing = sorted(differentiable - processed - set(EXEMPT_PRIMITIVES))
    assert not missing, f"differentiable primitives no gradient case reaches: {missing}"
