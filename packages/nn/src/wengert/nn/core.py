"""What makes a layer: a dataclass registered as a `wengert.ad` tree.

A layer's fields are of three kinds:

* children (the default): arrays and sub-layers; the leaves `ad.gradient`
  differentiates and optimisers update;
* ``static()`` fields: configuration (activation, stride, ...) kept in the
  tree's auxiliary data, so gradients and optimiser states never see them;
* `Buffer` fields: non-trainable state (BatchNorm statistics, a stateful
  RNN's carry). A Buffer is a tree node whose one child is its array, so a
  compiler staging the model sees the array as an input (never a constant
  baked in by identity); layers read it through `stop_gradient`, optimisers
  treat the whole Buffer as one leaf, and a traced copy of a model keeps a
  link to the original cell, so a training step can update it (as Flux does).

Freezing wraps a layer's children in `Const` while the tree is flattened:
the layer still holds plain arrays, but `ad.gradient` sees constants and
returns ``None`` for them, and optimisers skip them.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from wengert import ad

__all__ = ["Buffer", "Const", "Layer", "flatten_model", "freeze", "is_array", "match_dtype",
           "named_leaves", "named_parameters", "on_device_of", "parameters", "static", "testmode",
           "thaw", "trainable", "trainmode"]


def static(**kwargs: Any) -> Any:
    """Declare a configuration field (not a tree child)."""
    return dataclasses.field(metadata={"static": True}, **kwargs)


def is_array(x: Any) -> bool:
    """A concrete NumPy or CuPy array (not a traced value)."""
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy")


_dtype_warnings: set[tuple[str, np.dtype, np.dtype]] = set()


def match_dtype(x: Any, dtype: Any, layer: str) -> Any:
    """``x`` converted to the layer's parameter dtype (as Flux): a float32
    layer computes and returns float32 even for float64 input, instead of
    silently promoting; a float input of another precision is reported once
    per layer type and pair of dtypes. Complex values are left alone."""
    have = getattr(x, "dtype", None)
    if have is None or have == dtype:
        return x
    have, dtype = np.dtype(have), np.dtype(dtype)
    if have.kind in "cV" or dtype.kind != "f" or have.kind not in "biuf":
        return x
    if have.kind == "f" and (layer, have, dtype) not in _dtype_warnings:
        _dtype_warnings.add((layer, have, dtype))
        warnings.warn(f"{layer} has {dtype} parameters but got {have} input: the input is "
                      f"converted to {dtype} (convert the data, or build the layer with "
                      f"dtype=np.{have}, to silence this)", stacklevel=3)
    return x.astype(dtype)


def on_device_of(constant: np.ndarray, x: Any) -> Any:
    """``constant`` moved to the device of a concrete array ``x``.

    `wengert.ad` has no public way to ask a traced value for its device, so
    constants built next to traced CuPy values stay NumPy arrays.
    """
    if type(x).__module__.startswith("cupy"):
        return ad.to_device(constant, "gpu")
    return constant


class Buffer:
    """A mutable cell holding non-trainable state (never differentiated, never
    updated by optimisers)."""

    __slots__ = ("_origin", "value")

    def __init__(self, value: Any = None) -> None:
        self.value = value
        self._origin: Buffer | None = None

    @property
    def cell(self) -> Buffer:
        """The Buffer that owns the state: itself, or for the copy made while a
        model is traced (differentiated, staged), the original one."""
        return self._origin or self

    def __repr__(self) -> str:
        v = self.value
        return f"Buffer({getattr(v, 'shape', v)})"


class _CellRef:
    """A Buffer's tree auxiliary data: carries the cell, so a traced copy can
    write back into it, but compares equal to every other reference, since a
    Buffer's identity is not part of a model's structure (gradients, optimiser
    states and compile caches match any model of the same shapes)."""

    __slots__ = ("cell",)

    def __init__(self, cell: Buffer) -> None:
        self.cell = cell

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _CellRef)

    def __hash__(self) -> int:
        return 0


def _flatten_buffer(b: Buffer) -> tuple[list, _CellRef]:
    return [b.value], _CellRef(b.cell)


def _unflatten_buffer(ref: _CellRef, children: list) -> Buffer:
    (value,) = children
    if value is not None and value is ref.cell.value:
        return ref.cell
    new = Buffer(value)
    if value is None or not all(is_array(leaf) for leaf in ad.tree_leaves(value)):
        new._origin = ref.cell  # a traced copy: its updates go to the original
    return new


ad.register_tree(Buffer, _flatten_buffer, _unflatten_buffer)


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
    if frozen:
        values = [Const(getattr(layer, n)) if n in frozen else getattr(layer, n)
                  for n in children]
    else:
        values = [getattr(layer, n) for n in children]
    return values, (tuple([getattr(layer, s) for s in statics]), frozen)


def _unflatten(cls: type, aux: tuple, values: list) -> Layer:
    obj = object.__new__(cls)
    children, statics = _fields(cls)
    fields = getattr(obj, "__dict__", None)
    if fields is not None and not aux[1]:  # no frozen children, so no Const to unwrap
        fields.update(zip(children, values))
        fields.update(zip(statics, aux[0]))
        return obj
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
        """Named children to print on their own lines: the fields holding layers
        (so user-written blocks print their parts); containers override."""
        subs: list[tuple[str, Any]] = []
        for n in _fields(type(self))[0]:
            v = getattr(self, n)
            if isinstance(v, Layer):
                subs.append((n, v))
            elif isinstance(v, (list, tuple)):
                subs += [(f"{n}[{i}]", e) for i, e in enumerate(v) if isinstance(e, Layer)]
            elif isinstance(v, dict):
                subs += [(f"{n}[{k!r}]", e) for k, e in v.items() if isinstance(e, Layer)]
        return subs

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


def _is_model_leaf(x: Any) -> bool:
    return x is None or isinstance(x, (Buffer, Const))


def flatten_model(tree: Any) -> tuple[list, Any]:
    """`ad.tree_flatten` with ``None`` fields, `Buffer`s and frozen (`Const`)
    children as single leaves, so that a model, its gradient and an optimiser
    state built from it flatten alike (a ``bias=False`` layer has a ``None``
    leaf in all three)."""
    return ad.tree_flatten(tree, is_leaf=_is_model_leaf)


def trainable(x: Any) -> bool:
    """A leaf that gets gradients and optimiser updates: a float array that is
    neither state (`Buffer`) nor frozen (`Const`)."""
    if type(x) is np.ndarray:  # the common case, decided by the dtype alone
        return x.dtype.kind in "fc" or ad.is_differentiable(x)
    return hasattr(x, "shape") and not isinstance(x, (Buffer, Const)) and \
        ad.is_differentiable(x)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, non-trainable) element counts of the model's arrays; an
    array shared by several layers (tied weights) counts once."""
    trainable_size = fixed = 0
    seen: set[int] = set()
    for leaf in flatten_model(model)[0]:
        if isinstance(leaf, (Const, Buffer)):
            fixed += sum(int(getattr(v, "size", 0)) for v in ad.tree_leaves(leaf.value))
        elif trainable(leaf) and id(leaf) not in seen:
            seen.add(id(leaf))
            trainable_size += int(leaf.size)
    return trainable_size, fixed


# ---- names, freezing, modes --------------------------------------------------------------------

def named_leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, leaf)`` for every leaf of `flatten_model`, in its order
    (``None`` fields included); frozen and state leaves yield their arrays."""
    join = (lambda k: f"{prefix}.{k}") if prefix else str
    if isinstance(tree, Layer):
        for n in _fields(type(tree))[0]:
            yield from named_leaves(getattr(tree, n), join(n))
    elif isinstance(tree, dict):
        for k in _dict_order(tree):
            yield from named_leaves(tree[k], join(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from named_leaves(v, join(i))
    elif isinstance(tree, (Buffer, Const)):
        yield prefix, tree.value
    else:
        yield prefix, tree


def named_parameters(model: Any, *, trainable_only: bool = False) -> list[tuple[str, Any]]:
    """``(dotted name, array)`` of every parameter, as PyTorch's
    ``named_parameters``: frozen ones included (PyTorch's ``requires_grad=False``)
    unless ``trainable_only``, state (`Buffer`) excluded, an array shared by
    several layers (tied weights) listed once, under its first name."""
    leaves = flatten_model(model)[0]
    seen: set[int] = set()
    out = []
    for (name, value), leaf in zip(named_leaves(model), leaves):
        if isinstance(leaf, Buffer) or not hasattr(value, "shape") or id(value) in seen:
            continue
        if not ad.is_differentiable(value) or (trainable_only and isinstance(leaf, Const)):
            continue
        seen.add(id(value))
        out.append((name, value))
    return out


def parameters(model: Any, *, trainable_only: bool = False) -> list[Any]:
    """The arrays of `named_parameters`, in the same order."""
    return [p for _, p in named_parameters(model, trainable_only=trainable_only)]


class _Key:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


def _dict_order(d: dict) -> list:
    """The keys of ``d`` in the order `ad.tree_flatten` visits them."""
    return [k.key for k in ad.tree_leaves({k: _Key(k) for k in d})]


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
