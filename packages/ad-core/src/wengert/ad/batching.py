"""`vmap`: batching as a transformation of its own (JAX's ``vmap``).

A `BatchTracer` holds a value with one extra leading axis, the batch axis;
to the function it looks like one example (its shape lacks that axis).
Applying a primitive to batched values runs the primitive's *batching rule*
once on the whole batch, so ``vmap(f)(xs)`` costs one call of each primitive,
not one per example, eagerly and when staged.

Rules live in one table, `rules`, keyed by primitive name (filled by
`wengert.ad.batching_rules`): ``rule(args, batched, size, **params) ->
(outputs, out_batched)``, where ``args`` are the unwrapped operands (batched
ones carry the batch axis first) and ``batched`` says which are. A rule
returns its output(s) and whether each carries the batch axis. Primitives
without a vectorised rule (control flow, custom rules, convolution, ...) are
listed with `sequential`, which maps the primitive over the batch with one
`scan`: still one equation when staged, never a Python loop over examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._core import Aval, Primitive, Trace, Tracer, trace_level
from .errors import ConcretizationError
from .tree import tree_flatten, tree_unflatten

#: Batching rule of every primitive, by name. A test checks the whole registry is covered.
rules: dict[str, Callable] = {}


class BatchTracer(Tracer):
    """One example's view of a batched value: ``value`` has the batch axis first."""

    __slots__ = ("value",)

    def __init__(self, trace: BatchTrace, value: Any) -> None:
        self._trace = trace
        self.value = value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    @property
    def aval(self) -> Aval:
        return Aval(self.shape, self.dtype)

    def concrete_value(self, what: str) -> Any:
        raise ConcretizationError(
            f"{what} needs one value, but under vmap this array has one value per example "
            "(a batch of them). Use wengert.ad.numpy.where for elementwise choices, or "
            "wengert.ad.cond / while_loop, which vmap batches.")

    def __repr__(self) -> str:
        return f"BatchTracer(level={self._trace.level}, {self.aval}, batch={self._trace.size})"


class BatchTrace(Trace):
    """The batching level: every primitive applied to its tracers runs its rule."""

    __slots__ = ("size",)
    #: Structured control flow builds its equations (and this trace batches them) rather
    #: than running Python loops on batched conditions.
    stages_control_flow = True

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        vals = []
        batched = []
        for a in args:
            mine = type(a) is BatchTracer and a._trace is self
            vals.append(a.value if mine else a)
            batched.append(mine)
        rule = rules.get(prim.name)
        if rule is None:  # registered after the table was filled: derive it now
            from .batching_rules import install

            install()
            rule = rules.get(prim.name)
        if rule is None:
            raise NotImplementedError(
                f"vmap: primitive {prim.name!r} has no batching rule; add one to "
                "wengert.ad.batching.rules (wengert.ad.batching.sequential always works)")
        out, out_batched = rule(vals, batched, self.size, **params)
        if prim.multiple_results:
            return tuple(BatchTracer(self, o) if b else o for o, b in zip(out, out_batched))
        return BatchTracer(self, out) if out_batched else out

    def process_custom_vjp(self, fun: Callable, args: tuple) -> Any:
        """An `adjoint` function under vmap: its primal and pullback code are batched
        as they run (the pullback is used by a reverse trace below or above)."""
        return fun(*args)[0]


# ---- the generic fallback ------------------------------------------------------------------
def sequential(prim: Primitive) -> Callable:
    """The rule that maps ``prim`` over the batch with one `scan` (any primitive)."""
    def rule(vals: list, batched: list, size: int, **params: Any) -> tuple:
        from .control import scan

        rows_in = [v for v, b in zip(vals, batched) if b]

        def one(carry: Any, rows: list) -> tuple:
            it = iter(rows)
            out = prim.bind(*[next(it) if b else v for v, b in zip(vals, batched)], **params)
            return carry, (list(out) if prim.multiple_results else out)

        _, ys = scan(one, (), rows_in, length=size)
        if prim.multiple_results:
            return tuple(ys), [True] * len(ys)
        return ys, True

    rule.sequential = True
    return rule


# ---- vmap ----------------------------------------------------------------------------------
def _axes_per_leaf(axes: Any, args: tuple, what: str) -> list:
    """``in_axes`` (an int/None for all, or one per argument) as one entry per leaf."""
    if axes is None or isinstance(axes, int):
        axes = (axes,) * len(args)
    axes = tuple(axes)
    if len(axes) != len(args):
        raise ValueError(f"vmap: {what} has {len(axes)} entries but the function got "
                         f"{len(args)} positional arguments")
    per_leaf = []
    for a, ax in zip(args, axes):
        leaves, _ = tree_flatten(a)
        if ax is not None and not isinstance(ax, int):
            ax_leaves, _ = tree_flatten(ax, is_leaf=lambda v: v is None)
            if len(ax_leaves) != len(leaves):
                raise ValueError(f"vmap: {what} entry {ax!r} does not match its argument's "
                                 "structure")
            per_leaf.extend(ax_leaves)
        else:
            per_leaf.extend([ax] * len(leaves))
    return per_leaf


def _move(x: Any, source: int, destination: int) -> Any:
    from .numpy import moveaxis

    return x if source == destination else moveaxis(x, source, destination)


def vmap(f: Callable, in_axes: int | None | Sequence[Any] = 0,
         out_axes: int | None | Sequence[Any] = 0) -> Callable:
    """``f`` mapped over an axis of its arguments, run once on the whole batch.

    ``in_axes``: for each positional argument the axis to map over (``None``:
    the argument is shared by every example), or one int for all; an entry may
    be a tree matching its argument. ``out_axes``: where the batch axis goes in
    each output (an int for all, or one per output leaf); ``None`` for an
    output that does not depend on the batch. Composes with every other
    transformation: ``vmap(grad(loss), in_axes=(None, 0, 0))`` gives
    per-example gradients, and under `make_graph`/``xla.jit`` it stages one
    program with no loop over examples.
    """
    def batched(*args: Any) -> Any:
        leaves, in_tree = tree_flatten(list(args))
        axes = _axes_per_leaf(in_axes, args, "in_axes")
        sizes = {np.shape(x)[ax] if not isinstance(x, Tracer) else x.shape[ax]
                 for x, ax in zip(leaves, axes) if ax is not None}
        if len(sizes) != 1:
            raise ValueError("vmap: " + ("no argument is mapped (in_axes are all None)"
                                         if not sizes else
                                         f"mapped axes have different sizes {sorted(sizes)}"))
        (size,) = sizes
        trace = BatchTrace(size)
        with trace_level(trace):
            wrapped = [x if ax is None else BatchTracer(trace, _move(_as_array(x), ax, 0))
                       for x, ax in zip(leaves, axes)]
            out = f(*tree_unflatten(in_tree, wrapped))
        out_leaves, out_tree = tree_flatten(out)
        o_axes = [out_axes] * len(out_leaves) if out_axes is None or \
            isinstance(out_axes, int) else list(tree_flatten(out_axes,
                                                             is_leaf=lambda v: v is None)[0])
        if len(o_axes) != len(out_leaves):
            raise ValueError(f"vmap: out_axes has {len(o_axes)} entries for "
                             f"{len(out_leaves)} outputs")
        results = []
        for o, ax in zip(out_leaves, o_axes):
            mine = type(o) is BatchTracer and o._trace is trace
            if ax is None:
                if mine:
                    raise ValueError("vmap: out_axes=None for an output that depends on the "
                                     "mapped axis")
                results.append(o)
                continue
            value = o.value if mine else _broadcast_batch(o, size)
            results.append(_move(value, 0, ax % (np.ndim(value) if not isinstance(
                value, Tracer) else value.ndim)))
        return tree_unflatten(out_tree, results)

    batched.__name__ = f"vmap({getattr(f, '__name__', 'f')})"
    batched.__doc__ = getattr(f, "__doc__", None)
    batched.__wrapped__ = f
    return batched


def _as_array(x: Any) -> Any:
    if isinstance(x, Tracer) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    return np.asarray(x)


def _broadcast_batch(x: Any, size: int) -> Any:
    """An output that does not depend on the batch, repeated along a new first axis."""
    from .primitives.structural import broadcast_in_dim_p

    x = _as_array(x)
    shape = tuple(x.shape)
    return broadcast_in_dim_p.bind(x, shape=(size, *shape),
                                   broadcast_dimensions=tuple(range(1, len(shape) + 1)))
