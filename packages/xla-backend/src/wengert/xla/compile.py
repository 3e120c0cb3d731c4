"""`jit` and `lower`: stage once per input signature, lower, compile, cache, run.

A signature is the argument structure, each array leaf's shape and dtype,
the values of static leaves (Python scalars, static arguments), the target
device and jax's x64 mode. Each signature gets one `Program`: its graph, one
`jax.jit` object wrapping the graph's interpreter (so jax never retraces it)
and the ahead-of-time compiled executable.
"""

from __future__ import annotations

import functools
import inspect
import operator
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

import wengert.ad as ad
from wengert.ad import ir
from wengert.ad.primitives import Aval, Tracer
from wengert.ad.primitives.control import MaxStepsExceeded

from . import _jax_adapter, devices
from .captures import Captures
from .lowering import collect_overflow, interpret

#: Constants up to this many elements are baked into the program (XLA can fold
#: them); larger ones are passed as arguments, placed on the device once.
EMBED_CONST_MAX_SIZE = 64


def _refuse_non_numeric(x: Any, position: int) -> None:
    """XLA computes on numbers: say so before jax fails on a string or object array."""
    kind = np.dtype(x.dtype).kind
    if kind in "OUS":
        what = "object" if kind == "O" else "string"
        raise TypeError(
            f"jit: argument {position} holds a NumPy {what} array (dtype {x.dtype}, shape "
            f"{tuple(x.shape)}); XLA computes on numeric arrays only. Convert it to numbers "
            f"(np.asarray(x, dtype=float)), or, if it configures the function rather than "
            f"being data, pass it in a static argument (static_argnums=({position},)) as a "
            "hashable value such as a tuple")


def _static_key(x: Any, where: str) -> Any:
    """A static value as part of the cache key, compared by value.

    Lists, dicts and sets are keyed by their contents (a list that grows gets a
    new program); other unhashable objects are refused, since keying them by
    identity would return a stale program after they change."""
    if isinstance(x, (list, tuple)):
        return (type(x), tuple(_static_key(v, where) for v in x))
    if isinstance(x, dict):
        return (dict, tuple(sorted(((k, _static_key(v, where)) for k, v in x.items()),
                                   key=repr)))
    if isinstance(x, (set, frozenset)):
        return (frozenset, frozenset(_static_key(v, where) for v in x))
    try:
        hash(x)
    except TypeError:
        raise TypeError(
            f"jit: the static value {where} is a {type(x).__name__}, which is not hashable, so "
            "a compiled program cannot be keyed on its value. Pass arrays as traced "
            "arguments, or make the object hashable (define __hash__ and __eq__ by value)."
            ) from None
    return (type(x), x)


def _needs_x64(graph: ir.Graph) -> bool:
    """Whether any value of the graph (sub-graphs included) has a 64-bit type."""
    def wide(aval: Aval) -> bool:
        return aval.dtype.itemsize >= 8 and aval.dtype.kind in "iufc"

    def visit(g: ir.Graph) -> bool:
        if any(wide(v.aval) for v in (*g.in_vars, *g.const_vars, *g.out_atoms)):
            return True
        for e in g.eqns:
            # Literal inputs are Python scalars, cast to their operands' dtypes.
            if any(wide(v.aval) for v in (*e.outputs, *e.inputs) if isinstance(v, ir.Var)):
                return True
            for p in e.params.values():
                for sub in (p if isinstance(p, tuple) else (p,)):
                    if isinstance(sub, ir.Graph) and visit(sub):
                        return True
        return False

    return visit(graph)


#: The bound a differentiated Python ``while`` without ``set_loop_options(max_steps=...)``
#: gets first (its backward pass stores that many carries); doubled on overflow up to
#: MAX_LOOP_BOUND (past it, or when a loop with its own max_steps is what overflowed
#: alongside, `MaxStepsExceeded` is raised: overflows are not told apart per loop).
DEFAULT_LOOP_BOUND = 256
MAX_LOOP_BOUND = 2 ** 20


class LoopBoundWarning(UserWarning):
    """A differentiated loop ran past its default bound: the program is compiled again."""


class Program:
    """One staged graph, lowered for one device: the unit that is cached and run.

    ``default_bound`` says whether a loop of the graph took the default loop
    bound, so that an overflow can be cured by restaging with a larger one.
    """

    def __init__(self, graph: ir.Graph, device: jax.Device, donate: tuple[int, ...],
                 default_bound: bool = False) -> None:
        self.graph = graph
        self.default_bound = default_bound
        self.donates = bool(donate)
        self.device = device
        self.sharding = jax.sharding.SingleDeviceSharding(device)
        self.x64 = _needs_x64(graph)
        self.out_tree = graph.out_tree
        n_in = len(graph.in_vars)
        passed = [i for i, c in enumerate(graph.consts) if not _embeddable(c)]
        self._passed = passed
        with _jax_adapter.x64_scope(self.x64):
            self._const_args = [_place(graph.consts[i], self.sharding) for i in passed]

        def run_graph(*flat: Any) -> tuple:
            consts = list(graph.consts)
            for i, value in zip(passed, flat[n_in:]):
                consts[i] = value
            with collect_overflow() as scope:
                outs = interpret(graph, flat[:n_in], consts)
            self._checks_overflow = bool(scope.flags)
            return (*outs, scope.any()) if scope.flags else tuple(outs)

        run_graph.__name__ = "wengert_graph"
        self._jitted = jax.jit(run_graph, donate_argnums=donate, out_shardings=self.sharding)
        self._specs = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.sharding)
                       for a in (*graph.in_avals, *(graph.const_vars[i].aval for i in passed))]
        self._checks_overflow = False  # set while tracing: bounded loops return a flag
        self.captures = Captures(None)  # the staged function's, set by `Jitted`
        self._lowered: Any = None
        self._compiled: Any = None
        self._rebuild = _rebuilder(self.out_tree)

    @property
    def lowered(self) -> Any:
        if self._lowered is None:
            with _jax_adapter.x64_scope(self.x64):
                self._lowered = self._jitted.lower(*self._specs)
        return self._lowered

    @property
    def compiled(self) -> Any:
        if self._compiled is None:
            with _jax_adapter.x64_scope(self.x64):
                self._compiled = self.lowered.compile()
        return self._compiled

    def __call__(self, leaves: Sequence[Any], placed: bool = False) -> Any:
        """Run on the input leaves; ``placed``: every leaf is a NumPy array or a jax
        array on this program's device, which jax's dispatch takes as they are."""
        # jax.jit's own dispatch (its C++ fast path) unless the program was compiled
        # ahead of time (`Lowered.compile`): then that executable, not a second compile.
        run = self._jitted if self._compiled is None else self._compiled
        if not placed:
            leaves = [devices.to_jax(x, self.sharding) for x in leaves]
        if self.x64 and not _jax_adapter.x64_enabled():
            with _jax_adapter.x64_scope(True):
                outs = run(*leaves, *self._const_args)
        else:
            outs = run(*leaves, *self._const_args)
        if self._checks_overflow:
            outs = list(outs)
            if bool(outs.pop()):
                raise MaxStepsExceeded(
                    "a while_loop ran past its max_steps inside the compiled program (its "
                    "results would be those after max_steps iterations); raise max_steps")
        if self.out_tree.kind is None:  # a single array: no tree to rebuild
            return outs[0]
        return self._rebuild(outs)


def _rebuilder(tree: ad.TreeDef) -> Callable[[Sequence[Any]], Any]:
    """A function rebuilding ``tree`` around its leaves in one expression: what
    `wengert.ad.tree_unflatten` gives, without a Python call per node. Tuples, lists,
    dicts (in their own key order), namedtuples and ``None``; other nodes fall back
    to `tree_unflatten`."""
    names: dict[str, Any] = {}
    count = iter(range(tree.num_leaves))

    def name(value: Any) -> str:
        names[f"_{len(names)}"] = value
        return f"_{len(names) - 1}"

    def source(d: ad.TreeDef) -> str | None:
        if d.kind is None:
            return f"o[{next(count)}]"
        if d.kind is type(None):
            return "None"
        children = [source(c) for c in d.children]
        if None in children:
            return None
        if d.kind is tuple:
            return "(" + "".join(c + ", " for c in children) + ")"
        if d.kind is list:
            return "[" + ", ".join(children) + "]"
        if d.kind is dict:
            by_key = dict(zip(d.aux, children))
            order = getattr(d.aux, "order", None) or tuple(d.aux)
            return "{" + ", ".join(f"{name(k)}: {by_key[k]}" for k in order) + "}"
        if issubclass(d.kind, tuple) and hasattr(d.kind, "_fields"):
            return f"{name(d.kind)}({', '.join(children)})"
        return None

    body = source(tree)
    if body is None:
        return lambda leaves: ad.tree_unflatten(tree, list(leaves))
    return eval(f"lambda o: {body}", names)  # source built above from the structure only


def _place(value: Any, sharding: jax.sharding.Sharding) -> jax.Array:
    if isinstance(value, jax.Array) or devices.is_cupy(value):
        return devices.to_jax(value, sharding)
    return jax.device_put(np.asarray(value), sharding)


def _embeddable(value: Any) -> bool:
    return type(value) is np.ndarray and value.size <= EMBED_CONST_MAX_SIZE


_DTYPE_SHAPE = operator.attrgetter("dtype", "shape")
_AVAL = operator.attrgetter("aval")  # a jax array's shape and dtype: one attribute, fast


class _TreeCall:
    """A program found again from jax's flattening of the arguments (its treedef is the
    cache key), valid while every leaf has the type, dtype and shape it had: NumPy
    arrays, or jax arrays on the program's device, which jax's dispatch takes as they
    are. jax orders dict keys as `wengert.ad` may not: ``inputs`` reorders."""

    __slots__ = ("_order", "_signature_of", "program", "signature", "types")

    def __init__(self, program: Program, leaves: list, order: Any) -> None:
        self.program, self._order = program, order
        self.types = list(map(type, leaves))
        self._signature_of = _AVAL if all(
            isinstance(x, jax.Array) and hasattr(x, "aval") for x in leaves) else _DTYPE_SHAPE
        self.signature = list(map(self._signature_of, leaves))

    @classmethod
    def of(cls, program: Program, leaves: list, inputs: list) -> _TreeCall | None:
        """The entry for a call whose jax leaves are ``leaves`` and whose program inputs
        are ``inputs`` (the same objects, in `wengert.ad`'s order); ``None`` if such a
        call cannot skip the slow path (other leaves, an array passed twice)."""
        position = {id(x): k for k, x in enumerate(leaves)}
        placed = all(type(x) is np.ndarray
                     or (isinstance(x, jax.Array) and x.sharding == program.sharding)
                     for x in leaves)
        if not placed or len(position) != len(leaves) or len(inputs) != len(leaves):
            return None
        try:
            order = [position[id(x)] for x in inputs]
        except KeyError:
            return None
        reorder = None if order == list(range(len(order))) else operator.itemgetter(*order)
        return cls(program, leaves, reorder)

    def matches(self, leaves: list) -> bool:
        return list(map(type, leaves)) == self.types and \
            list(map(self._signature_of, leaves)) == self.signature

    def inputs(self, leaves: list) -> Any:
        if self._order is None:
            return leaves
        picked = self._order(leaves)
        return picked if len(leaves) > 1 else (picked,)


class Jitted:
    """``f`` compiled per input signature; call it like ``f``. See `jit`."""

    def __init__(self, f: Callable, *, device: str | jax.Device | None,
                 static_argnums: int | Sequence[int], static_argnames: str | Sequence[str],
                 donate_argnums: int | Sequence[int], autograph: bool) -> None:
        self._fun = f
        self._device = devices.resolve_device(device)
        names = _parameter_names(f)
        nums = set(_argnums(static_argnums))
        argnames = {static_argnames} if isinstance(static_argnames, str) else \
            set(static_argnames)
        # As jax: a static position also makes its parameter name static, and back.
        nums |= {names.index(n) for n in argnames if n in names}
        argnames |= {names[i] for i in nums if i < len(names)}
        self._static = frozenset(nums)
        self._static_names = frozenset(argnames)
        self._donate = frozenset(_argnums(donate_argnums))
        if self._static & self._donate:
            raise ValueError("an argument cannot be both static and donated: "
                             f"{sorted(self._static & self._donate)}")
        self._autograph = autograph
        self._converted: Callable | None = None
        self._programs: dict[Any, Program] = {}
        self._by_tree: dict[Any, _TreeCall] = {}  # by jax's treedef of the arguments
        self._loop_bound = DEFAULT_LOOP_BOUND
        self._warned = False
        if isinstance(f, types.FunctionType):
            # Not `updated=("__dict__",)`: a wrapped function's attributes (e.g. copied
            # from another Jitted by functools.wraps) must not overwrite this one's state.
            functools.update_wrapper(self, f, updated=())

    # -- signature --------------------------------------------------------------------------
    def _split(self, args: tuple, kwargs: dict) -> tuple[Any, list, Any, dict]:
        """(key, input leaves, dynamic part, static part) of a call.

        The dynamic part is ``(positional, keyword)`` with static arguments
        removed; each of its leaves is an input (arrays, numbers) or static."""
        if self._static:
            dyn_args = tuple(a for i, a in enumerate(args) if i not in self._static)
            static = {i: a for i, a in enumerate(args) if i in self._static}
        else:
            dyn_args, static = args, {}
        if kwargs:
            dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self._static_names}
            static.update((k, v) for k, v in kwargs.items() if k in self._static_names)
        else:
            dyn_kwargs = kwargs
        leaves, treedef = ad.tree_flatten((dyn_args, dyn_kwargs))
        leaf_keys = []
        inputs = []
        for k, x in enumerate(leaves):
            aval = ir.input_aval(x)
            if aval is None:
                leaf_keys.append(_static_key(x, f"at leaf {k} of the arguments"))
            else:
                if aval.dtype.kind in "OUS":
                    _refuse_non_numeric(x, _argument_of_leaf(k, dyn_args, len(args), static))
                leaf_keys.append((type(aval), aval))
                inputs.append(x)
        device = self._device or self._device_from(inputs)
        static_keys = tuple(sorted(((k, _static_key(v, f"argument {k!r}"))
                                    for k, v in static.items()), key=repr)) if static else ()
        key = (len(args), static_keys, treedef, tuple(leaf_keys), device,
               _jax_adapter.x64_enabled())
        return key, inputs, (dyn_args, dyn_kwargs), static

    @staticmethod
    def _device_from(inputs: Sequence[Any]) -> jax.Device:
        for x in inputs:
            d = devices.device_of(x)
            if d is not None:
                return d
        return jax.devices()[0]

    def _program(self, args: tuple, kwargs: dict) -> tuple[Program, list]:
        key, inputs, dynamic, static = self._split(args, kwargs)
        program = self._programs.get(key)
        if program is None:
            program = self._build(len(args), key[4], dynamic, static)
            self._programs[key] = program
        return program, inputs

    def _function(self) -> Callable:
        """The function that is staged: ``f`` with its control flow converted."""
        if self._converted is None:
            if self._autograph:
                from .autograph import convert

                self._converted = convert(self._fun)
            else:
                self._converted = self._fun
        return self._converted

    def _build(self, n_args: int, device: jax.Device, dynamic: tuple, static: dict
               ) -> Program:
        fun = self._function()
        positions = [i for i in range(n_args) if i not in static]

        def staged(dyn: tuple) -> Any:
            dyn_args, dyn_kwargs = dyn
            full = dict(zip(positions, dyn_args))
            full.update((k, v) for k, v in static.items() if isinstance(k, int))
            kwargs = {k: v for k, v in static.items() if isinstance(k, str)}
            kwargs.update(dyn_kwargs)
            return fun(*(full[i] for i in range(n_args)), **kwargs)

        abstract = ad.tree_map(lambda x: Aval(x.shape, x.dtype)
                               if type(ir.input_aval(x)) is Aval else x, dynamic)
        captures = Captures(self._fun)  # before staging: the values the graph will hold
        try:
            with ad.while_loop_bound(self._loop_bound) as bound:
                graph = ad.make_graph(staged, abstract)
        except RecursionError:
            raise RecursionError(
                f"jit: staging {getattr(self._fun, '__qualname__', self._fun)!r} recursed "
                "without end. A recursive function whose stopping condition depends on a "
                "traced value stages both branches of that `if` at every depth; make the "
                "value that bounds the recursion static (static_argnums/static_argnames), "
                "or write the recursion as a while_loop") from None
        donate = []
        flat = 0
        for k, (i, a) in enumerate([*zip(positions, dynamic[0]),
                                    *((None, v) for v in dynamic[1].values())]):
            for x in ad.tree_flatten(a)[0]:
                if ir.input_aval(x) is not None:
                    if i in self._donate:
                        donate.append(flat)
                    flat += 1
        program = Program(graph, device, tuple(donate), default_bound=bound.used)
        program.captures = captures
        return program

    def _grow_loop_bound(self, program: Program) -> None:
        """A loop ran past the default bound: double it, report it once, restage."""
        if self._loop_bound >= MAX_LOOP_BOUND:
            raise MaxStepsExceeded(
                f"a while loop still ran past its bound at {self._loop_bound} steps (or a loop "
                "with its own max_steps did); give each loop "
                "set_loop_options(max_steps=N) with the bound it needs")
        if program.donates:
            raise MaxStepsExceeded(
                f"a differentiated while loop ran past its default bound of "
                f"{self._loop_bound} steps, and the inputs were donated, so the program "
                "cannot be rerun with a larger bound; give the loop "
                "set_loop_options(max_steps=N) as the first statement of its body")
        self._loop_bound *= 2
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"{getattr(self._fun, '__qualname__', self._fun)!r}: a differentiated while "
                f"loop ran past its bound of {self._loop_bound // 2} steps; compiling again "
                f"with {self._loop_bound} (doubled each time it is exceeded, reported once). "
                "Give the loop set_loop_options(max_steps=N) to compile it once.",
                LoopBoundWarning, stacklevel=3)
        self._programs = {k: p for k, p in self._programs.items() if not p.default_bound}
        self._by_tree = {k: c for k, c in self._by_tree.items() if not c.program.default_bound}

    # -- public -------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        known_tree = True
        while True:
            program, inputs, placed = self._dispatch(args, kwargs, known_tree)
            if program is None:
                # Called by a transformation (another jit, grad, jvp, checkpoint, vmap):
                # inline, so the caller's trace sees every primitive.
                return self._function()(*args, **kwargs)
            program.captures.check()
            try:
                return program(inputs, placed)
            except MaxStepsExceeded:
                if not program.default_bound:
                    raise
                self._grow_loop_bound(program)
            except ValueError:
                # jax refuses, before running, a jax array committed to another device
                # than the program's: the full path finds the program for its device.
                if not placed:
                    raise
                known_tree = False

    def _dispatch(self, args: tuple, kwargs: dict, known_tree: bool = True
                  ) -> tuple[Program | None, Any, bool]:
        """(program, its input leaves, whether they are placed); no program for traced
        arguments. The common call (arrays in plain containers, seen before) is found
        by jax's C++ flattening and one comparison of the leaves' types, dtypes and
        shapes: no per-leaf Python work beyond that."""
        tree_key = None
        if not kwargs and not self._static:
            leaves, tree_key = jax.tree_util.tree_flatten(args)
            known = self._by_tree.get(tree_key) if known_tree else None
            if known is not None and known.matches(leaves):
                return known.program, known.inputs(leaves), True
        if _any_traced(args, kwargs):
            return None, None, False
        program, inputs = self._program(args, kwargs)
        if tree_key is not None:
            known = _TreeCall.of(program, leaves, inputs)
            if known is not None:
                self._by_tree[tree_key] = known
        return program, inputs, False

    def lower(self, *args: Any, **kwargs: Any) -> Lowered:
        """Stage and lower for these arguments (arrays or `jax.ShapeDtypeStruct`/`Aval`)."""
        return Lowered(self, self._program(args, kwargs)[0])

    def graph(self, *args: Any, **kwargs: Any) -> ir.Graph:
        """The staged `wengert.ad` graph that is compiled for these arguments."""
        return self._program(args, kwargs)[0].graph


def _argument_of_leaf(k: int, dyn_args: tuple, n_args: int, static: dict) -> int | str:
    """The position of the argument holding leaf ``k`` of ``(dyn_args, kwargs)``."""
    positions = [i for i in range(n_args) if i not in static]
    seen = 0
    for position, a in zip(positions, dyn_args):
        seen += len(ad.tree_flatten(a)[0])
        if k < seen:
            return position
    return "given by keyword"


def _any_traced(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(x, Tracer) for x in ad.tree_leaves((args, kwargs)))


def _argnums(nums: int | Sequence[int]) -> tuple[int, ...]:
    return (nums,) if isinstance(nums, int) else tuple(nums)


def _parameter_names(f: Callable) -> list[str]:
    """Names of ``f``'s positional parameters, in order (empty if it has no signature)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


class Lowered:
    """A staged, lowered program: ``as_text()`` is its StableHLO."""

    def __init__(self, jitted: Jitted, program: Program) -> None:
        self._jitted = jitted
        self.program = program

    def as_text(self) -> str:
        return self.program.lowered.as_text()

    @property
    def graph(self) -> ir.Graph:
        return self.program.graph

    def compile(self) -> Compiled:
        self.program.compiled  # noqa: B018  (compiles now, not at the first call)
        return Compiled(self._jitted, self.program)


class Compiled:
    """A compiled executable; call it with arguments of the signature it was built for."""

    def __init__(self, jitted: Jitted, program: Program) -> None:
        self._jitted = jitted
        self.program = program

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        program, inputs = self._jitted._program(args, kwargs)
        if program is not self.program:
            raise TypeError("these arguments do not match the signature this executable was "
                            "compiled for; call the jitted function to compile a new one")
        return program(inputs)

    def as_text(self) -> str:
        """The optimised HLO XLA generated."""
        return self.program.compiled.as_text()

    def cost_analysis(self) -> dict:
        """XLA's estimate: ``flops``, ``bytes accessed``, ... (GPU flop counts are rough)."""
        return _jax_adapter.cost_analysis(self.program.compiled)

    def memory_analysis(self) -> Any:
        """Argument, output, temporary and generated-code sizes in bytes."""
        return self.program.compiled.memory_analysis()


def jit(f: Callable | None = None, *, device: str | jax.Device | None = None,
        static_argnums: int | Sequence[int] = (), static_argnames: str | Sequence[str] = (),
        donate_argnums: int | Sequence[int] = (), autograph: bool = True) -> Any:
    """Compile ``f`` (staged with `wengert.ad.make_graph`) into one XLA executable per
    input signature. Usable as ``@jit`` or ``@jit(device="gpu")``.

    Arrays, NumPy scalars and Python ``int``/``float``/``complex`` arguments
    (positional or keyword) are traced — numbers as weakly typed scalars, so a
    loop counter does not recompile — while ``bool``, ``None``, strings and other
    objects are static. ``static_argnums``/``static_argnames`` make arguments static:
    their values (compared by value) are part of the signature. A jitted function
    called by another transformation (jit, grad, jvp, checkpoint, vmap) is inlined
    into the caller's program.
    ``donate_argnums`` lets XLA reuse those inputs' buffers for outputs (in-place
    parameter updates; the donated jax arrays are invalid afterwards);
    ``autograph`` converts Python ``if``/``while``/``for`` on traced values into
    `wengert.ad` control flow.
    """
    options = dict(device=device, static_argnums=static_argnums,
                   static_argnames=static_argnames, donate_argnums=donate_argnums,
                   autograph=autograph)
    if f is None:
        return lambda fun: Jitted(fun, **options)
    return Jitted(f, **options)


def lower(f: Callable, *args: Any, **options: Any) -> Lowered:
    """``jit(f, **options).lower(*args)``: inspect ``.as_text()``, then ``.compile()``."""
    return jit(f, **options).lower(*args)
