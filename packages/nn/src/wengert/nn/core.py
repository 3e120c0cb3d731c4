"""What makes a layer: a dataclass registered as a `wengert.ad` tree.

A layer's fields are of three kinds:

* children (the default): arrays and sub-layers; the leaves `ad.gradient`
  differentiates and optimisers update;
* ``static()`` fields: configuration (activation, stride, ...) kept in the
  tree's auxiliary data, so gradients and optimiser states never see them;
* `Buffer` fields: non-trainable state (BatchNorm statistics, a stateful
  RNN's carry). A Buffer is an opaque tree leaf, so it gets no gradient, and
  a mutable cell shared by a model and its traced copies, so a training step
  can update it (as Flux does).

Freezing wraps a layer's children in `Const` while the tree is flattened:
the layer still holds plain arrays, but `ad.gradient` sees constants and
returns ``None`` for them, and optimisers skip them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from wengert import ad

__all__ = ["Buffer", "Const", "Layer", "freeze", "is_array", "named_leaves", "on_device_of", "static",
           "testmode", "thaw", "trainmode"]


def static(**kwargs: Any) -> Any:
    """Declare a configuration field (not a tree child)."""
    return dataclasses.field(metadata={"static": True}, **kwargs)


def is_array(x: Any) -> bool:
    """A concrete NumPy or CuPy array (not a traced value)."""
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy")


def on_device_of(constant: np.ndarray, x: Any) -> Any:
    """``constant`` moved to the device of a concrete array ``x``.

    `wengert.ad` has no public way to ask a traced value for its device, so
    constants built next to traced CuPy values stay NumPy arrays.
    """
    if type(x).__module__.startswith("cupy"):
        return ad.to_device(constant, "gpu")
    return constant


class Buffer:
    """A mutable cell holding non-trainable state; a leaf without a gradient."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        return f"Buffer({getattr(v, 'shape', v)})"


class Const:
    """A frozen child as seen by tree flattening: a leaf without a gradient."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Const({getattr(self.value, 'shape', self.value)})"


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    children, statics = [], []
    for f in dataclasses.fields(cls):
        (statics if f.metadata.get("static") else children).append(f.name)
    return tuple(children), tuple(statics)


def _flatten(layer: Layer) -> tuple[list, tuple]:
    children, statics = _fields(type(layer))
    frozen = layer._frozen
    values = [Const(getattr(layer, n)) if n in frozen else getattr(layer, n) for n in children]
    return values, (tuple(getattr(layer, s) for s in statics), frozen)


def _unflatten(cls: type, aux: tuple, values: list) -> Layer:
    obj = object.__new__(cls)
    children, statics = _fields(cls)
    for n, v in zip(children, values):
        object.__setattr__(obj, n, v.value if isinstance(v, Const) else v)
    for n, v in zip(statics, aux[0]):
        object.__setattr__(obj, n, v)
    if aux[1]:
        object.__setattr__(obj, "_frozen", aux[1])
    return obj


class Layer:
    """Base class: subclasses are dataclasses (write your own ``__init__``)
    registered as trees. Call them like functions."""

    _frozen: frozenset = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls, init=False, repr=False, eq=False)
        ad.register_tree(cls, _flatten, functools.partial(_unflatten, cls))

    def replace(self, **changes: Any) -> Layer:
        """A copy with some fields replaced (``__init__`` is not rerun)."""
        leaves, treedef = ad.tree_flatten(self, is_leaf=lambda x: x is not self)
        new = ad.tree_unflatten(treedef, leaves)
        for k, v in changes.items():
            if k not in _fields(type(self))[0] + _fields(type(self))[1]:
                raise AttributeError(f"{type(self).__name__} has no field {k!r}")
            object.__setattr__(new, k, v)
        return new

    # -- printing ------------------------------------------------------------------------
    def _signature(self) -> str:
        """The part inside the parentheses of this layer's one-line summary."""
        shown = []
        for n in _fields(type(self))[0]:
            v = getattr(self, n)
            if hasattr(v, "shape"):
                shown.append(f"{n}={tuple(v.shape)}")
        return ", ".join(shown)

    def _sublayers(self) -> list[tuple[str, Any]]:
        """Named children to print on their own lines (containers override)."""
        return []

    def __repr__(self) -> str:
        return _summary(self, top=True)


def _summary(obj: Any, top: bool = False, indent: str = "", comma: str = "") -> str:
    """Flux-style: one line per leaf layer with its parameter count, containers nested."""
    if not isinstance(obj, Layer):
        return getattr(obj, "__name__", repr(obj)) + comma
    name = type(obj).__name__
    subs = obj._sublayers()
    trainable, fixed = count_parameters(obj)
    counts = ", ".join(([f"{trainable:,} parameters"] if trainable else [])
                       + ([f"{fixed:,} non-trainable"] if fixed else []))
    if not subs:
        return f"{name}({obj._signature()}){comma}" + (f"  # {counts}" if counts else "")
    inner = indent + "  "
    lines = [f"{name}("]
    for label, sub in subs:
        prefix = f"{label} = " if label else ""
        lines.append(f"{inner}{prefix}{_summary(sub, indent=inner, comma=',')}")
    lines.append(f"{indent}){comma}")
    if top:
        n_arrays = sum(1 for _, x in named_leaves(obj) if is_array(x))
        lines[-1] += f"  # Total: {n_arrays} arrays, {counts or '0 parameters'}"
    return "\n".join(lines)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, non-trainable) element counts of the model's arrays."""
    trainable = fixed = 0
    for leaf in ad.tree_flatten(model)[0]:
        if isinstance(leaf, (Const, Buffer)):
            fixed += int(getattr(leaf.value, "size", 0))
        elif hasattr(leaf, "shape") and ad.is_differentiable(leaf):
            trainable += int(leaf.size)
    return trainable, fixed


# ---- names, freezing, modes --------------------------------------------------------------------

def named_leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, leaf)`` in `ad.tree_flatten` order; frozen and state
    leaves yield their arrays."""
    join = (lambda k: f"{prefix}.{k}") if prefix else str
    if isinstance(tree, Layer):
        for n in _fields(type(tree))[0]:
            yield from named_leaves(getattr(tree, n), join(n))
    elif isinstance(tree, dict):
        for k in _keys_in_tree_order(tree):
            yield from named_leaves(tree[k], join(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from named_leaves(v, join(i))
    elif isinstance(tree, (Buffer, Const)):
        yield prefix, tree.value
    elif tree is not None:
        yield prefix, tree


def _keys_in_tree_order(d: dict) -> tuple:
    """``d``'s keys in the order `ad.tree_flatten` visits them (sorted, as JAX)."""
    return ad.tree_flatten(d, is_leaf=lambda x: x is not d)[1].aux


def _map_layers(fn: Callable[[Layer], Layer], tree: Any) -> Any:
    """Rebuild ``tree`` with ``fn`` applied to every layer, innermost first."""
    if isinstance(tree, Layer):
        children, _ = _fields(type(tree))
        new = tree.replace(**{n: _map_layers(fn, getattr(tree, n)) for n in children})
        return fn(new)
    if isinstance(tree, dict):
        return {k: _map_layers(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_map_layers(fn, v) for v in tree)
    return tree


def _set_frozen(layer: Layer, frozen: frozenset) -> Layer:
    new = layer.replace()
    object.__setattr__(new, "_frozen", frozen)
    return new


def freeze(model: Any) -> Any:
    """A copy whose parameters get no gradient and no optimiser update."""
    return _map_layers(lambda m: _set_frozen(m, frozenset(
        n for n in _fields(type(m))[0] if getattr(m, n) is not None
        and not isinstance(getattr(m, n), (Layer, Buffer, list, tuple, dict)))), model)


def thaw(model: Any) -> Any:
    """Undo `freeze`: every parameter trains again."""
    return _map_layers(lambda m: _set_frozen(m, frozenset()), model)


def _set_mode(model: Any, training: bool) -> Any:
    def switch(m: Layer) -> Layer:
        return m.replace(training=training) if "training" in _fields(type(m))[1] else m

    return _map_layers(switch, model)


def trainmode(model: Any) -> Any:
    """A copy in training mode: Dropout drops, BatchNorm uses batch statistics."""
    return _set_mode(model, True)


def testmode(model: Any) -> Any:
    """A copy in inference mode: Dropout is the identity, BatchNorm uses running statistics."""
    return _set_mode(model, False)
