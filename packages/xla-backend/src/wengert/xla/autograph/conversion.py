"""Which callables get converted, and how a converted function is rebuilt.

User functions are rewritten (`transform`); library code (wengert, numpy,
jax, the standard library, ...) runs as it is, except that library closures
such as ``wengert.ad.grad(f)`` get their captured user functions converted,
so ``jit(ad.grad(f))`` compiles Python control flow inside ``f``. Methods,
`functools.partial` objects and callable instances are unwrapped to their
functions. Conversions are cached per code object.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any

from ..errors import ConversionError
from . import transform

_LIBRARIES = frozenset({"wengert", "numpy", "jax", "jaxlib", "scipy", "cupy", "cupyx",
                        "ml_dtypes", "opt_einsum", "torch", "builtins", *sys.stdlib_module_names})
_codes: dict[types.CodeType, types.CodeType] = {}
_converted: set[types.CodeType] = set()


def _is_library(fn: Any) -> bool:
    """Judged by the module that defines the code (``functools.wraps`` copies the
    wrapped function's ``__module__`` onto library wrappers such as ``ad.grad``)."""
    if isinstance(fn, types.FunctionType):
        module = fn.__globals__.get("__name__") or ""
    else:
        module = getattr(fn, "__module__", None) or type(fn).__module__ or ""
    return module.split(".")[0] in _LIBRARIES


def _converted_code(fn: types.FunctionType) -> types.CodeType:
    code = fn.__code__
    if code not in _codes:
        self_name = None
        if "__class__" in code.co_freevars and code.co_argcount:
            self_name = code.co_varnames[0]
        fn_def, filename = transform.parse_function(fn)
        transform.transform_function(fn_def, filename, self_name)
        new = transform.compile_converted(fn_def, filename, code.co_freevars)
        _codes[code] = new
        _mark(new)
    return _codes[code]


def _mark(code: types.CodeType) -> None:
    _converted.add(code)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _mark(c)


def _rebuild(fn: types.FunctionType, code: types.CodeType, cells: dict[str, Any]) -> Any:
    closure = tuple(cells[name] for name in code.co_freevars)
    new = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    return functools.update_wrapper(new, fn)


def _convert_function(fn: types.FunctionType, strict: bool) -> Any:
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    if _is_library(fn):
        # A library closure: convert the user functions it captured (ad.grad(f) -> f).
        changed = False
        for name, cell in cells.items():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if callable(value) and not isinstance(value, type):
                new = convert(value, strict=False)
                if new is not value:
                    cells[name], changed = types.CellType(new), True
        return _rebuild(fn, fn.__code__, cells) if changed else fn
    try:
        code = _converted_code(fn)
    except ConversionError:
        if strict and fn.__name__ != "<lambda>":  # a lambda holds no statements to convert
            raise
        return fn
    from . import runtime  # imports this module: bound late

    cells[transform.RUNTIME] = types.CellType(runtime)
    return _rebuild(fn, code, cells)


def convert(fn: Any, strict: bool = True) -> Any:
    """``fn`` with its Python control flow converted (see the package docs).

    ``strict``: raise `ConversionError` where conversion is impossible; otherwise
    (functions called from converted code) return ``fn`` unchanged.
    """
    if isinstance(fn, types.FunctionType):
        if fn.__code__ in _converted:
            return fn
        return _convert_function(fn, strict)
    if isinstance(fn, types.MethodType):
        func = convert(fn.__func__, strict)
        return fn if func is fn.__func__ else types.MethodType(func, fn.__self__)
    if isinstance(fn, functools.partial):
        func = convert(fn.func, strict)
        return fn if func is fn.func else functools.partial(func, *fn.args, **fn.keywords)
    call = getattr(type(fn), "__call__", None)
    if isinstance(call, types.FunctionType) and not _is_library(call):
        return types.MethodType(convert(call, strict), fn)
    return fn


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A call made by converted code: user functions are converted first."""
    if isinstance(fn, type) or _is_library(fn) and not isinstance(fn, types.FunctionType):
        return fn(*args, **kwargs)
    return convert(fn, strict=False)(*args, **kwargs)
