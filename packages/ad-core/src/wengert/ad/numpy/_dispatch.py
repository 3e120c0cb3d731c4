"""NEP-13 / NEP-18 dispatch: NumPy calls on traced values are routed to the
function of the same name in `wengert.ad.numpy`. A NumPy function without a
rule raises an error naming it and saying what to do.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np

from ..errors import NonDifferentiableError

# NumPy ufunc names that differ from ours.
_UFUNC_ALIASES = {"absolute": "abs", "conjugate": "conj", "true_divide": "divide"}
_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
           "logical_and": "all", "logical_or": "any"}
_ACCUMULATE = {"add": "cumsum", "multiply": "cumprod"}


def _missing(qualname: str) -> NonDifferentiableError:
    return NonDifferentiableError(
        f"{qualname} was called on a traced value, but wengert.ad has no differentiation rule "
        f"for it. Use the wengert.ad.numpy equivalent if there is one, rewrite it with "
        f"functions that have rules, or give it a rule with @wengert.ad.adjoint.")


def _namespace(module_name: str):
    sub = module_name.removeprefix("numpy").lstrip(".")
    sub = sub.split(".")[0] if sub else ""
    if sub.startswith("_"):  # numpy._core.* internals re-exported at the top level
        sub = ""
    return importlib.import_module("wengert.ad.numpy" + (f".{sub}" if sub else ""))


def _owner(uf: np.ufunc) -> str:
    """scipy.special's ufuncs reach us through NEP-13 too; find whose ``uf`` is."""
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, uf.__name__, None) is uf:
        return "scipy.special"
    return "numpy"


def _refuse_out(qualname: str, kwargs: dict) -> dict:
    if kwargs.get("out") is not None:
        raise NonDifferentiableError(
            f"{qualname}(..., out=...) writes into a plain array, which would drop "
            "the derivative; assign the result instead")
    return {k: v for k, v in kwargs.items() if k != "out"}


#: Each ufunc seen so far -> our function of its name (``x @ w`` with a plain ``x``
#: and a traced ``w`` comes here on every call: look the name up once).
_resolved: dict[np.ufunc, Any] = {}


def ufunc(uf: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    if kwargs:
        kwargs = _refuse_out(f"numpy.{uf.__name__}", kwargs)
    if method == "__call__":
        fn = _resolved.get(uf)
        if fn is None:
            fn = _resolved[uf] = _resolve(uf)
        return fn(*inputs, **kwargs)
    from .. import numpy as wnp

    table = {"reduce": _REDUCE, "accumulate": _ACCUMULATE}.get(method, {})
    if uf.__name__ in table:
        return getattr(wnp, table[uf.__name__])(*inputs, **{"axis": 0, **kwargs})
    raise _missing(f"numpy.{uf.__name__}.{method}")


def _resolve(uf: np.ufunc) -> Any:
    """Our function for ufunc ``uf`` (NumPy's or scipy.special's), or an error naming it."""
    owner = _owner(uf)
    if owner != "numpy":
        ns, name = importlib.import_module(f"wengert.ad.{owner}"), uf.__name__
    else:
        from .. import numpy as ns

        name = _UFUNC_ALIASES.get(uf.__name__, uf.__name__)
    fn = getattr(ns, name, None)
    if fn is None:
        raise _missing(f"{owner}.{uf.__name__}")
    return fn


def function(func: Any, args: tuple, kwargs: dict) -> Any:
    kwargs = _refuse_out(f"numpy.{func.__name__}", kwargs)
    ns = _namespace(getattr(func, "__module__", "numpy") or "numpy")
    fn = getattr(ns, func.__name__, None)
    if fn is None or fn is func:
        raise _missing(f"{ns.__name__.replace('wengert.ad.', '')}.{func.__name__}")
    return fn(*args, **kwargs)
