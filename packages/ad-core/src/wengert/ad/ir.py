"""The staged program representation: typed variables, equations, graphs.

A `Graph` is what `make_graph` produces and `wengert.xla` compiles: input
variables, lifted constants, a list of equations (primitive, inputs, outputs,
static params, sub-graphs for control flow) and outputs. Graphs are immutable
and hashable by structure, so they can key a compile cache.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._core import Aval, Primitive, Tracer, aval_of

_ids = itertools.count()


class Var:
    """A typed value of a graph. Identity is the variable; ``aval`` its type."""

    __slots__ = ("aval", "id")

    def __init__(self, aval: Aval) -> None:
        self.aval = aval
        self.id = next(_ids)

    def __repr__(self) -> str:
        return f"Var({self.id}: {self.aval})"


def input_aval(x: Any) -> Aval | None:
    """How a leaf of a staged function's arguments enters the graph (JAX's rules):
    arrays, NumPy scalars and `Aval` placeholders as inputs of their type; Python
    ``int``/``float``/``complex`` as weakly typed 0-d inputs (one graph for every
    value); ``bool``, ``None``, strings, callables and other objects stay static."""
    if isinstance(x, Aval):
        return x
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float, complex, np.generic)):
        return aval_of(x)
    if hasattr(x, "shape") and hasattr(x, "dtype") and not callable(x):
        return Aval(x.shape, x.dtype)
    return None


@dataclass(frozen=True)
class Literal:
    """A Python scalar used directly as an equation input."""

    value: Any

    @property
    def aval(self) -> Aval:
        return Aval((), np.result_type(self.value))


Atom = Var | Literal


@dataclass(frozen=True, eq=False)
class Eqn:
    prim: Primitive
    inputs: tuple[Atom, ...]
    outputs: tuple[Var, ...]
    params: dict = field(default_factory=dict)


def _param_key(v: Any) -> Any:
    """A hashable stand-in for a static parameter (graphs hash structurally)."""
    if isinstance(v, (Graph, str, int, float, bool, complex, type(None), np.dtype)):
        return v
    if isinstance(v, type):
        return v
    if isinstance(v, (tuple, list)):
        return tuple(_param_key(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _param_key(x)) for k, x in v.items()))
    try:
        hash(v)
        return v
    except TypeError:
        return ("id", id(v))


def _const_key(value: Any) -> Any:
    arr = np.asarray(value) if type(value) is np.ndarray or np.isscalar(value) else None
    if arr is not None and arr.size <= 4096:
        return (arr.shape, arr.dtype.str, arr.tobytes())
    return ("id", id(value))


class Graph:
    """An immutable staged program. ``print(graph)`` shows one equation per line."""

    __slots__ = ("in_vars", "const_vars", "consts", "eqns", "out_atoms", "in_tree",
                 "out_tree", "_key")

    def __init__(self, in_vars: Sequence[Var], const_vars: Sequence[Var], consts: Sequence[Any],
                 eqns: Sequence[Eqn], out_atoms: Sequence[Atom], in_tree: Any = None,
                 out_tree: Any = None) -> None:
        self.in_vars = tuple(in_vars)
        self.const_vars = tuple(const_vars)
        self.consts = tuple(consts)
        self.eqns = tuple(eqns)
        self.out_atoms = tuple(out_atoms)
        self.in_tree = in_tree
        self.out_tree = out_tree
        self._key = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_key" and hasattr(self, "_key"):
            raise AttributeError("Graph is immutable")
        object.__setattr__(self, name, value)

    @property
    def in_avals(self) -> tuple[Aval, ...]:
        return tuple(v.aval for v in self.in_vars)

    @property
    def out_avals(self) -> tuple[Aval, ...]:
        return tuple(a.aval for a in self.out_atoms)

    def structural_key(self) -> tuple:
        """Equal for graphs that compute the same thing with renamed variables."""
        if self._key is None:
            number: dict[int, int] = {}

            def ref(a: Atom) -> Any:
                if isinstance(a, Literal):
                    return ("lit", a.value, np.result_type(a.value).str)
                return number.setdefault(a.id, len(number))

            parts = [tuple((ref(v), v.aval) for v in self.in_vars),
                     tuple((ref(v), v.aval, _const_key(c))
                           for v, c in zip(self.const_vars, self.consts))]
            for e in self.eqns:
                parts.append((e.prim.name, tuple(ref(a) for a in e.inputs),
                              tuple((ref(o), o.aval) for o in e.outputs),
                              _param_key(e.params)))
            parts.append(tuple(ref(a) for a in self.out_atoms))
            parts.append((self.in_tree, self.out_tree))
            self._key = tuple(parts)
        return self._key

    def __hash__(self) -> int:
        return hash(self.structural_key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and self.structural_key() == other.structural_key()

    def primitives(self) -> Iterator[Primitive]:
        """Every primitive used, sub-graphs included."""
        for e in self.eqns:
            yield e.prim
            for p in e.params.values():
                for sub in (p if isinstance(p, tuple) else (p,)):
                    if isinstance(sub, Graph):
                        yield from sub.primitives()

    def __str__(self) -> str:
        return _Printer().graph(self)

    def __repr__(self) -> str:
        return (f"Graph({len(self.in_vars)} inputs, {len(self.eqns)} equations, "
                f"{len(self.out_atoms)} outputs)")


class _Printer:
    """Names variables a, b, ..., z, ba, ... in order of appearance."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    def name(self, a: Atom) -> str:
        if isinstance(a, Literal):
            return repr(a.value)
        if a.id not in self.names:
            n, s = len(self.names), ""
            while True:
                s = chr(ord("a") + n % 26) + s
                n //= 26
                if n == 0:
                    break
            self.names[a.id] = s
        return self.names[a.id]

    def typed(self, v: Var) -> str:
        return f"{self.name(v)}:{v.aval}"

    def param(self, v: Any, indent: str) -> str:
        if isinstance(v, Graph):
            body = self.graph(v, indent + "    ")
            return "\n" + body
        if isinstance(v, tuple) and any(isinstance(x, Graph) for x in v):
            return "".join(self.param(x, indent) for x in v)
        if isinstance(v, np.dtype):
            return v.name
        return repr(v)

    def graph(self, g: Graph, indent: str = "") -> str:
        ins = ", ".join(self.typed(v) for v in g.in_vars)
        lines = [f"{indent}graph({ins})"]
        if g.const_vars:
            lines[0] += " consts(" + ", ".join(self.typed(v) for v in g.const_vars) + ")"
        lines[0] += ":"
        for e in g.eqns:
            outs = ", ".join(self.typed(o) for o in e.outputs)
            args = ", ".join(self.name(a) for a in e.inputs)
            params = " ".join(f"{k}={self.param(v, indent + '  ')}" for k, v in e.params.items())
            lines.append(f"{indent}  {outs} = {e.prim.name}({args}){' ' + params if params else ''}")
        lines.append(f"{indent}  return ({', '.join(self.name(a) for a in g.out_atoms)})")
        return "\n".join(lines)


# ---- passes --------------------------------------------------------------------------------


def dead_code_elimination(g: Graph) -> Graph:
    """Drop equations none of whose outputs is needed (all primitives are pure)."""
    live = {a.id for a in g.out_atoms if isinstance(a, Var)}
    kept = []
    for e in reversed(g.eqns):
        if any(o.id in live for o in e.outputs):
            kept.append(e)
            live.update(a.id for a in e.inputs if isinstance(a, Var))
    consts = [(v, c) for v, c in zip(g.const_vars, g.consts) if v.id in live]
    return Graph(g.in_vars, [v for v, _ in consts], [c for _, c in consts], reversed(kept),
                 g.out_atoms, g.in_tree, g.out_tree)


def common_subexpression_elimination(g: Graph) -> Graph:
    """Reuse the outputs of an earlier equation with the same primitive, inputs and params."""
    rename: dict[int, Atom] = {}
    seen: dict[Any, tuple[Var, ...]] = {}
    eqns = []

    def sub(a: Atom) -> Atom:
        return rename.get(a.id, a) if isinstance(a, Var) else a

    for e in g.eqns:
        inputs = tuple(sub(a) for a in e.inputs)
        try:
            key = (e.prim, tuple(a.id if isinstance(a, Var) else ("lit", a.value,
                                                                  type(a.value)) for a in inputs),
                   _param_key(e.params))
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in seen:
            for old, new in zip(e.outputs, seen[key]):
                rename[old.id] = new
            continue
        new_eqn = Eqn(e.prim, inputs, e.outputs, e.params)
        eqns.append(new_eqn)
        if key is not None:
            seen[key] = e.outputs
    return Graph(g.in_vars, g.const_vars, g.consts, eqns, [sub(a) for a in g.out_atoms],
                 g.in_tree, g.out_tree)


def simplify(g: Graph) -> Graph:
    """CSE then DCE: the passes `make_graph` applies."""
    return dead_code_elimination(common_subexpression_elimination(g))
