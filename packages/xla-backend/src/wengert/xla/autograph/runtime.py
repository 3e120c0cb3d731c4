"""What converted code calls at trace time: `if_stmt`, `while_stmt`, `for_stmt`, ...

Each construct first asks whether its condition is a plain value (Python
value or eager tracer): then it simply runs as Python. Only a *staged*
condition turns it into `wengert.ad.cond` / `wengert.ad.while_loop`.

The state of a construct is the tuple of the variables it assigns. Staged,
array and number variables become branch outputs or loop carries; other
objects must come out unchanged; a variable assigned on only some paths (or
first assigned inside a staged loop) becomes an `Undefined` that raises a
clear error where it is used.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad.errors import ConcretizationError

from .conversion import call  # noqa: F401  (converted code calls __ag.call)

_NUMBER = (bool, int, float, complex, np.number, np.bool_)


class Undefined:
    """A variable without a value on the path taken; any use raises."""

    __slots__ = ("name", "why")

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    def _message(self) -> str:
        return (f"variable {self.name!r} is used where it may be undefined: {self.why}. "
                "Assign it before the if/loop (with the shape and dtype it will have).")

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise NameError(self._message())

    def __getattr__(self, attr: str) -> Any:
        raise AttributeError(self._message())  # hasattr() probes stay quiet

    __bool__ = __array__ = __call__ = __getitem__ = __iter__ = __len__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
    __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = __float__ = __int__ = __index__ = _fail

    def __repr__(self) -> str:
        return f"<undefined {self.name}>"


def ld(read: Callable[[], Any], name: str) -> Any:
    """The current value of a local variable, or `Undefined` if it has none yet."""
    try:
        return read()
    except NameError:
        return Undefined(name, "it has no value before this point")


def concrete_bool(x: Any) -> bool | None:
    """``bool(x)`` when it is known at trace time, ``None`` when ``x`` is staged."""
    try:
        return bool(x)
    except ConcretizationError:
        return None


@dataclasses.dataclass(frozen=True)
class LoopOptions:
    max_steps: int | None = None
    checkpoint_every: int | None = None


def set_loop_options(*, max_steps: int | None = None, checkpoint_every: int | None = None
                     ) -> LoopOptions:
    """As the first statement of a ``while``/``for`` body: options of the staged loop.

    ``max_steps`` bounds the iterations (needed to differentiate a loop whose
    condition is traced); ``checkpoint_every`` trades memory for recomputation
    in its backward pass. Ignored when the loop runs as Python.
    """
    return LoopOptions(max_steps, checkpoint_every)


# ---- leaves: what may flow through a staged construct ----------------------------------------


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.generic)


def _is_number(x: Any) -> bool:
    return isinstance(x, _NUMBER)


@dataclasses.dataclass
class _Leaf:
    """How one leaf of a variable travels: as an array of (shape, dtype), or static."""

    static: bool
    value: Any = None
    shape: tuple = ()
    dtype: Any = None
    weak: bool = False  # a Python number: takes the other side's dtype


def _describe(x: Any) -> _Leaf:
    if _is_array(x):
        return _Leaf(False, shape=tuple(x.shape), dtype=np.dtype(x.dtype))
    if _is_number(x):
        return _Leaf(False, shape=(), dtype=np.result_type(x), weak=not isinstance(x, np.generic))
    return _Leaf(True, value=x)


def _same_static(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001  (objects whose == is not a truth value)
        return False


def _join(a: _Leaf, b: _Leaf, name: str, where: str) -> _Leaf:
    """One description both sides can be cast to, or a clear error."""
    if a.static and b.static:
        if _same_static(a.value, b.value):
            return a
        raise TypeError(f"{where}: variable {name!r} gets different non-array values "
                        f"({a.value!r} and {b.value!r}) on the two paths of a staged "
                        "if/loop; only arrays and numbers can depend on traced conditions")
    if a.static or b.static:
        raise TypeError(f"{where}: variable {name!r} is an array on one path and "
                        f"{(a if a.static else b).value!r} on the other")
    if a.shape != b.shape and not (a.weak or b.weak):
        raise TypeError(f"{where}: variable {name!r} has shape {a.shape} on one path and "
                        f"{b.shape} on the other; shapes cannot depend on traced conditions")
    shape = b.shape if a.weak else a.shape
    if a.weak != b.weak:
        dtype = np.result_type(b.dtype if a.weak else a.dtype,
                               (a if a.weak else b).dtype.type(0).item())
    else:
        dtype = np.result_type(a.dtype, b.dtype)
    return _Leaf(False, shape=shape, dtype=dtype, weak=a.weak and b.weak)


def _cast(x: Any, leaf: _Leaf) -> Any:
    x = wnp.asarray(x)
    if x.dtype != leaf.dtype:
        x = x.astype(leaf.dtype)
    if tuple(x.shape) != leaf.shape:
        x = wnp.broadcast_to(x, leaf.shape)
    return x


class _State:
    """The variables of one construct: flattening to traced leaves and back."""

    def __init__(self, names: Sequence[str], where: str) -> None:
        self.names = names
        self.where = where

    def spec(self, values: Sequence[Any]) -> list:
        """Per variable: ``None`` (undefined) or ``(treedef, [leaf descriptions])``."""
        out = []
        for v in values:
            if isinstance(v, Undefined):
                out.append(None)
            else:
                leaves, tree = ad.tree_flatten(v)
                out.append((tree, [_describe(x) for x in leaves]))
        return out

    def join(self, a: list, b: list, why: str) -> list:
        out = []
        for name, sa, sb in zip(self.names, a, b):
            if sa is None or sb is None:
                out.append(None if sa is sb else why)
                continue
            if sa[0] != sb[0]:
                raise TypeError(f"{self.where}: variable {name!r} has structure {sa[0]} on one "
                                f"path and {sb[0]} on the other")
            out.append((sa[0], [_join(x, y, name, self.where) for x, y in zip(sa[1], sb[1])]))
        return out

    @staticmethod
    def flat(values: Sequence[Any], spec: list) -> list:
        """The traced leaves of ``values`` under ``spec``, cast to it."""
        out = []
        for v, s in zip(values, spec):
            if isinstance(s, tuple):
                leaves = ad.tree_flatten(v)[0]
                out.extend(_cast(x, d) for x, d in zip(leaves, s[1]) if not d.static)
        return out

    def unflat(self, leaves: Sequence[Any], spec: list) -> tuple:
        it = iter(leaves)
        out = []
        for name, s in zip(self.names, spec):
            if s is None:
                out.append(Undefined(name, f"it is first assigned inside the staged construct "
                                           f"at {self.where}"))
            elif isinstance(s, str):
                out.append(Undefined(name, s))
            else:
                out.append(ad.tree_unflatten(s[0], [d.value if d.static else next(it)
                                                    for d in s[1]]))
        return tuple(out)


def _retrying(attempt: Callable[[list | None], Any], first_specs: Callable[[], list],
              joined: Callable[[], list]) -> Any:
    """Stage once with each side's own types; if the sides disagree (a Python ``0`` on one
    side, a float32 array on the other), stage again with both cast to the joined types."""
    try:
        return attempt(None)
    except TypeError:
        spec = joined()  # raises the precise error if the sides cannot agree
        if all(s == spec for s in first_specs()):
            raise  # the sides agreed: the error is not about them
        return attempt(spec)


# ---- if ----------------------------------------------------------------------------------


def if_stmt(test: Any, true_fn: Callable, false_fn: Callable, state: tuple,
            names: tuple[str, ...], where: str) -> tuple:
    flag = concrete_bool(test)
    if flag is not None:
        return (true_fn if flag else false_fn)(*state)
    st = _State(names, where)
    seen: dict[bool, list] = {}
    one_sided = f"it is assigned on only one path of the if at {where}"

    def branch(fn: Callable, side: bool, spec: list | None) -> Callable:
        def run() -> list:
            out = fn(*_fresh(state))
            seen[side] = st.spec(out)
            return st.flat(out, spec or seen[side])
        return run

    def joined() -> list:
        for side, fn in ((True, true_fn), (False, false_fn)):
            if side not in seen:
                seen[side] = st.spec(fn(*_fresh(state)))
        return st.join(seen[True], seen[False], one_sided)

    def attempt(spec: list | None) -> tuple:
        leaves = ad.cond(test, branch(true_fn, True, spec), branch(false_fn, False, spec))
        return st.unflat(leaves, spec or st.join(seen[True], seen[False], one_sided))

    return _retrying(attempt, lambda: [seen.get(True), seen.get(False)], joined)


def if_exp(test: Any, true_fn: Callable, false_fn: Callable, where: str) -> Any:
    """``a if test else b``."""
    return if_stmt(test, lambda: (true_fn(),), lambda: (false_fn(),), (), ("<if-expression>",),
                   where)[0]


# ---- loops -------------------------------------------------------------------------------


def while_stmt(test: Callable, body: Callable, state: tuple, names: tuple[str, ...],
               where: str, options: LoopOptions | None = None) -> tuple:
    state = tuple(state)
    while True:
        flag = concrete_bool(test(*state))
        if flag is None:
            return _staged_while(test, body, state, names, where, options or LoopOptions())
        if not flag:
            return state
        state = tuple(body(*state))


def _staged_while(test: Callable, body: Callable, state: tuple, names: tuple[str, ...],
                  where: str, options: LoopOptions) -> tuple:
    """Defined array/number variables are carried; variables first assigned in the body
    are temporaries (undefined after the loop); other objects must not change."""
    st = _State(names, where)
    entry = st.spec(state)
    seen: list = []
    temporary = f"it is first assigned inside the loop at {where}, whose condition is traced"

    def attempt(spec: list | None) -> tuple:
        spec = spec or entry

        def body_fn(carry: list) -> list:
            out = body(*st.unflat(_fresh(carry), spec))
            seen[:] = [st.spec(out)]
            st.join(spec, seen[0], temporary)  # objects that change: a precise error
            return st.flat(out, spec)

        final = ad.while_loop(lambda carry: test(*st.unflat(_fresh(carry), spec)), body_fn,
                              st.flat(state, spec), max_steps=options.max_steps,
                              checkpoint_every=options.checkpoint_every)
        return st.unflat(final, spec)

    def joined() -> list:
        if not seen:
            seen.append(st.spec(body(*_fresh(state))))
        return st.join(entry, seen[0], temporary)

    return _retrying(attempt, lambda: [entry], joined)


def _fresh(values: Any) -> Any:
    """New handles on traced arrays. A traced array is a mutable handle (``n += 1``
    rebinds it), and a staged branch or body must not rebind the handles that the
    other branch, or the loop itself, still reads."""
    return ad.tree_map(lambda x: copy.copy(x) if _is_array(x) and type(x).__module__
                       .startswith("wengert.") else x, values)


class TracedRange:
    """``range(start, stop, step)`` with staged bounds: a staged loop over a counter."""

    def __init__(self, start: Any, stop: Any, step: Any) -> None:
        self.start, self.stop, self.step = start, stop, step

    def __iter__(self):
        raise ConcretizationError("a range with traced bounds can only drive a for loop "
                                  "converted by wengert.xla's autograph")


def range_(*args: Any) -> range | TracedRange:
    """``range`` whose bounds may be staged values."""
    try:
        return range(*(int(a) for a in args))
    except ConcretizationError:
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
        return TracedRange(start, stop, step)


def for_stmt(iterable: Any, extra_test: Callable | None, body: Callable, state: tuple,
             names: tuple[str, ...], where: str, options: LoopOptions | None = None) -> tuple:
    """``for target in iterable`` (``extra_test``: the break/return flags, if any)."""
    state = tuple(state)
    if isinstance(iterable, TracedRange):
        return _staged_range(iterable, extra_test, body, state, names, where,
                             options or LoopOptions())
    for item in iterable:
        if extra_test is not None:
            go_on = extra_test(*state)
            flag = concrete_bool(go_on)
            if flag is False:
                break
            if flag is None:  # a traced break: the remaining iterations run under a cond
                state = if_stmt(go_on, lambda *s, item=item: body(item, *s), lambda *s: s,
                                state, names, where)
                continue
        state = tuple(body(item, *state))
    return state


def _staged_range(r: TracedRange, extra_test: Callable | None, body: Callable, state: tuple,
                  names: tuple[str, ...], where: str, options: LoopOptions) -> tuple:
    def test(i: Any, *s: Any) -> Any:
        up = concrete_bool(r.step > 0)
        in_range = (i < r.stop if up else i > r.stop) if up is not None else \
            wnp.where(r.step > 0, i < r.stop, i > r.stop)
        return in_range if extra_test is None else and_(lambda: in_range,
                                                        lambda: extra_test(*s))

    def step(i: Any, *s: Any) -> tuple:
        return (i + r.step, *body(i, *s))

    counter = wnp.asarray(r.start).astype(np.result_type(*(wnp.asarray(b).dtype for b in
                                                            (r.start, r.stop, r.step))))
    return _staged_while(test, step, (counter, *state), ("<loop counter>", *names), where,
                         options)[1:]


# ---- boolean operators ------------------------------------------------------------------


def and_(*operands: Callable[[], Any]) -> Any:
    """``a and b and ...``: Python's short-circuit while values are known, else elementwise."""
    value = operands[0]()
    for k, rest in enumerate(operands[1:], 1):
        flag = concrete_bool(value)
        if flag is None:
            return wnp.logical_and(value, and_(*operands[k:]))
        if not flag:
            return value
        value = rest()
    return value


def or_(*operands: Callable[[], Any]) -> Any:
    """``a or b or ...``."""
    value = operands[0]()
    for k, rest in enumerate(operands[1:], 1):
        flag = concrete_bool(value)
        if flag is None:
            return wnp.logical_or(value, or_(*operands[k:]))
        if flag:
            return value
        value = rest()
    return value


def not_(x: Any) -> Any:
    flag = concrete_bool(x)
    return wnp.logical_not(x) if flag is None else not flag
