"""Conformance with NumPy's public namespace (``numpy``, ``numpy.linalg``,
``numpy.fft``) and the SciPy functions of issue 10: every callable is classified
(data in `adcore_support`) as differentiable (a gradient case of that name), passing
through (integer, boolean, shape or Python results on traced inputs) or refused
with an error naming it; each classification is checked, here by calling. A name in
none of them fails, and so does a classification that no longer holds.
"""

from __future__ import annotations

import inspect
import warnings
from collections import Counter
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.errors import NonDifferentiableError, TracerArrayConversionError

from adcore_support import (CALLS, INTEGER_ONLY, PASS_THROUGH, REFUSED, REFUSED_BY_CONVERSION,
                            REFUSED_BY_NUMPY)
from gradient_cases import CASES

X = np.arange(1.0, 7.0).reshape(2, 3)
DIFFERENTIABLE = {c.name for c in CASES}


def _public(module: ModuleType, prefix: str) -> list[str]:
    """Callables that act on data: classes, dtypes, submodules and NumPy's test runner
    (an object that runs NumPy's own suite) are not functions of arrays."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated aliases warn on access
        for name in dir(module):
            obj = getattr(module, name)
            if name.startswith("_") or not callable(obj) or isinstance(obj, type) \
                    or inspect.ismodule(obj) or type(obj).__name__ == "PytestTester":
                continue
            out.append(f"{prefix}.{name}")
    return sorted(out)


NAMES = _public(np, "numpy") + _public(np.linalg, "numpy.linalg") + _public(np.fft, "numpy.fft")


def classify(name: str) -> str:
    kinds = [kind for kind, members in (("differentiable", DIFFERENTIABLE),
                                        ("pass-through", PASS_THROUGH),
                                        ("integer-only", INTEGER_ONLY),
                                        ("refused", REFUSED | REFUSED_BY_CONVERSION | REFUSED_BY_NUMPY))
             if name in members]
    assert len(kinds) <= 1, f"{name} is classified as {kinds}"
    return kinds[0] if kinds else "unclassified"


def _numpy_function(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr({"numpy": np, "numpy.linalg": np.linalg, "numpy.fft": np.fft}[module],
                       attr)


def _call_traced(name: str) -> Any:
    """Call the NumPy function on a traced array inside a gradient; return its result
    (or raise what it raised)."""
    fn = _numpy_function(name)
    call = CALLS.get(name, lambda f, x: f(x))
    seen = {}

    def f(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seen["out"] = call(fn, x)
        return wnp.sum(x)

    ad.gradient(f, X)
    return seen["out"]


def test_every_name_is_classified() -> None:
    unclassified = [n for n in NAMES if classify(n) == "unclassified"]
    assert not unclassified, f"NumPy names in no conformance class: {unclassified}"
    counts = Counter(classify(n) for n in NAMES)
    print(f"\nNumPy conformance: {counts['differentiable']} differentiable, "
          f"{counts['pass-through']} pass through, {counts['refused']} refused "
          f"(of {len(NAMES)} public callables)")


def test_classification_has_no_stale_names() -> None:
    public = set(NAMES)
    stale = sorted((PASS_THROUGH | INTEGER_ONLY | REFUSED | REFUSED_BY_CONVERSION
                    | REFUSED_BY_NUMPY | set(CALLS)) - public)
    assert not stale, f"conformance table names that NumPy does not have: {stale}"


@pytest.mark.parametrize("name", [n for n in NAMES if classify(n) == "differentiable"])
def test_differentiable_names_dispatch_to_a_rule(name: str) -> None:
    # The case table differentiates our function; NumPy's must reach it by name.
    owner = "wengert.ad." + name.rpartition(".")[0]
    module = __import__(owner, fromlist=["_"])
    assert hasattr(module, name.rpartition(".")[2]), f"{name} has a case but no twin"


def _float_tracers(tree: Any) -> list:
    from wengert.ad._core import Tracer

    leaves = ad.tree_leaves(tree) if not isinstance(tree, (str, bytes)) else []
    return [v for v in leaves if isinstance(v, Tracer) and np.dtype(v.dtype).kind in "fc"]


@pytest.mark.parametrize("name", sorted(PASS_THROUGH))
def test_pass_through_names_return_no_derivative_carrier(name: str) -> None:
    out = _call_traced(name)
    assert not _float_tracers(out), f"{name} returned a float traced value"


@pytest.mark.parametrize("name", sorted(INTEGER_ONLY))
def test_integer_only_names_refuse_floats_as_numpy_does(name: str) -> None:
    # (test_operators checks their values on integers and booleans.)
    with pytest.raises(TypeError):
        CALLS.get(name, lambda f, x: f(x))(_numpy_function(name), X)
    with pytest.raises(TypeError):
        _call_traced(name)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_names_raise_naming_themselves(name: str) -> None:
    with pytest.raises(NonDifferentiableError) as info:
        _call_traced(name)
    spelled = {name.rpartition(".")[2], _numpy_function(name).__name__}  # aliases: own name
    assert any(s in str(info.value) for s in spelled), f"{name}: {info.value}"


@pytest.mark.parametrize("name", sorted(REFUSED_BY_CONVERSION))
def test_conversion_functions_refuse(name: str) -> None:
    with pytest.raises(TracerArrayConversionError):
        _call_traced(name)


@pytest.mark.parametrize("name", sorted(REFUSED_BY_NUMPY))
def test_numpy_refuses_traced_operands_itself(name: str) -> None:
    with pytest.raises(TypeError):
        _call_traced(name)


# ---- SciPy: plain scipy.special ufuncs dispatch (NEP-13); SciPy's Python functions convert
# their inputs, so they are refused with the differentiable twin named.
SCIPY_UFUNCS = ["erf", "erfc", "gammaln", "digamma", "psi", "expit", "logit", "ndtr"]
SCIPY_TWINS = {
    "scipy.special.logsumexp": lambda sc, x: sc.special.logsumexp(x),
    "scipy.stats.norm.logpdf": lambda sc, x: sc.stats.norm.logpdf(x),
    "scipy.stats.norm.cdf": lambda sc, x: sc.stats.norm.cdf(x),
    "scipy.stats.t.logpdf": lambda sc, x: sc.stats.t.logpdf(x, 3.0),
    "scipy.stats.t.cdf": lambda sc, x: sc.stats.t.cdf(x, 3.0),
    "scipy.stats.multivariate_normal.logpdf":
        lambda sc, x: sc.stats.multivariate_normal.logpdf(x, np.zeros(3), np.eye(3)),
}


@pytest.mark.parametrize("name", SCIPY_UFUNCS)
def test_plain_scipy_ufuncs_are_differentiable(name: str) -> None:
    special = pytest.importorskip("scipy.special")
    assert f"scipy.special.{name}" in DIFFERENTIABLE
    (g,) = ad.gradient(lambda x: wnp.sum(getattr(special, name)(x / 7.0)), X)
    assert np.all(np.isfinite(g)) and np.any(g != 0)


@pytest.mark.parametrize("name", sorted(SCIPY_TWINS))
def test_plain_scipy_functions_name_their_differentiable_twin(name: str) -> None:
    scipy = pytest.importorskip("scipy")
    import scipy.special  # noqa: F401
    import scipy.stats  # noqa: F401

    assert name in DIFFERENTIABLE
    with pytest.raises(TracerArrayConversionError, match=f"wengert.ad.{name}".replace(".", r"\.")):
        ad.gradient(lambda x: wnp.sum(SCIPY_TWINS[name](scipy, x)), X)
