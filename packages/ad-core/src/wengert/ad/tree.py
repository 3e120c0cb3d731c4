"""Containers as trees: flatten any nest of tuples, lists, dicts, namedtuples,
dataclasses and registered classes into leaves, and rebuild the same
structure around new leaves (so gradients come back model-shaped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

_registry: dict[type, tuple[Callable, Callable]] = {}


class TreeDef(NamedTuple):
    """The structure of a tree: node kind, auxiliary data and children's structures."""

    kind: Any  # a type, or None for a leaf
    aux: Hashable
    children: tuple

    @property
    def num_leaves(self) -> int:
        if self.kind is None:
            return 1
        return sum(c.num_leaves for c in self.children)

    def __repr__(self) -> str:
        if self.kind is None:
            return "*"
        if self.kind is dict:  # the keys are what tells two dicts apart
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.aux, self.children)) + "}"
        inner = ", ".join(map(repr, self.children))
        return f"{getattr(self.kind, '__name__', self.kind)}({inner})"


_LEAF = TreeDef(None, None, ())
_NONE = TreeDef(type(None), None, ())


def register_tree(cls: type, flatten: Callable[[Any], tuple[list, Hashable]],
                  unflatten: Callable[[Hashable, list], Any]) -> type:
    """Make ``cls`` a tree node: ``flatten(obj) -> (children, aux)``,
    ``unflatten(aux, children) -> obj``. ``aux`` must be hashable."""
    _registry[cls] = (flatten, unflatten)
    _kind_of_type.pop(cls, None)
    return cls


_field_names: dict[type, tuple[str, ...]] = {}


def _dataclass_flatten(obj: Any) -> tuple[list, Hashable]:
    names = _field_names.get(type(obj))
    if names is None:
        names = _field_names[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
    return [getattr(obj, n) for n in names], names


def _dataclass_unflatten(cls: type, names: tuple, children: list) -> Any:
    # Bypass __init__/__post_init__: a gradient is not a freshly built object.
    obj = object.__new__(cls)
    for n, c in zip(names, children):
        object.__setattr__(obj, n, c)
    return obj


_kind_of_type: dict[type, str] = {}


def _kind(t: type) -> str:
    """How values of type ``t`` flatten; computed once per type (trees are walked often)."""
    kind = _kind_of_type.get(t)
    if kind is None:
        if t is tuple or t is list:
            kind = "sequence"
        elif t is dict:
            kind = "dict"
        elif t is type(None):
            kind = "none"
        elif t in _registry:
            kind = "registered"
        elif issubclass(t, tuple) and hasattr(t, "_fields"):
            kind = "namedtuple"
        elif dataclasses.is_dataclass(t):
            kind = "dataclass"
        else:
            kind = "leaf"
        _kind_of_type[t] = kind
    return kind


def _node(x: Any) -> tuple[Any, list, Hashable] | None:
    t = type(x)
    kind = _kind_of_type.get(t) or _kind(t)
    if kind == "leaf":
        return None
    _, children, aux = _split(x, t, kind)
    return t, list(children), aux


def _split(x: Any, t: type, kind: str) -> tuple[Any, Any, Hashable]:
    """``(type, children, aux)`` of a node ``x`` of type ``t`` and kind ``kind``."""
    if kind == "sequence" or kind == "namedtuple":
        return t, x, None
    if kind == "dict":
        keys = DictKeys.of(x)
        return t, [x[k] for k in keys], keys
    if kind == "none":
        return t, (), None
    if kind == "registered":
        children, aux = _registry[t][0](x)
        return t, children, aux
    children, names = _dataclass_flatten(x)
    return t, children, names


class DictKeys(tuple):
    """A dict node's keys, sorted (as JAX), so two dicts built in different orders
    have one structure and their leaves line up; ``order`` keeps the dict's own
    order (``None`` if sorted already) so a rebuilt dict, a gradient for
    instance, lists its keys as the argument did. Keys that do not sort (mixed
    types) keep insertion order."""

    order: tuple | None

    @classmethod
    def of(cls, d: dict) -> DictKeys:
        own = tuple(d)
        try:
            keys = cls(sorted(own))
        except TypeError:
            keys = cls(own)
        keys.order = None if tuple(keys) == own else own
        return keys

    def rebuild(self, children: list) -> dict:
        if self.order is None:
            return dict(zip(self, children))
        by_key = dict(zip(self, children))
        return {k: by_key[k] for k in self.order}


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, TreeDef]:
    """Leaves in a deterministic order, and the structure to rebuild ``tree``."""
    leaves: list = []
    append = leaves.append
    kinds = _kind_of_type

    # Every training step flattens the model several times: leaves (most nodes) are
    # decided here without a call, containers by `_split`.
    def walk(x: Any) -> TreeDef:
        if is_leaf is not None and is_leaf(x):
            append(x)
            return _LEAF
        t = type(x)
        kind = kinds.get(t) or _kind(t)
        if kind == "leaf":
            append(x)
            return _LEAF
        if kind == "none":
            return _NONE
        _, children, aux = _split(x, t, kind)
        return _new_treedef((t, aux, tuple([walk(c) for c in children])))

    return leaves, walk(tree)


def _new_treedef(fields: tuple) -> TreeDef:
    """``TreeDef(*fields)`` without the Python-level ``__new__`` of named tuples."""
    return _tuple_new(TreeDef, fields)


_tuple_new = tuple.__new__


def tree_unflatten(treedef: TreeDef, leaves: list) -> Any:
    """Rebuild a tree of ``treedef``'s structure around ``leaves``."""
    it = iter(leaves)
    take = it.__next__
    registry = _registry

    def build(d: TreeDef) -> Any:
        k, aux, subs = d
        if k is None:
            return take()
        if k is _NoneType:
            return None
        children = [build(c) for c in subs]
        if k is tuple or k is list:
            return k(children)
        if k is dict:
            return aux.rebuild(children)
        entry = registry.get(k)
        if entry is not None:
            return entry[1](aux, children)
        if hasattr(k, "_fields"):
            return k(*children)
        return _dataclass_unflatten(k, aux, children)

    try:
        out = build(treedef)
    except StopIteration:
        raise ValueError(f"tree_unflatten: fewer leaves ({len(leaves)}) than the structure "
                         f"{treedef} holds") from None
    if next(it, _sentinel) is not _sentinel:
        raise ValueError(f"tree_unflatten: more leaves than the structure {treedef} holds")
    return out


_NoneType = type(None)
_sentinel = object()


def flatten_up_to(treedef: TreeDef, tree: Any, what: str) -> list:
    """The leaves of ``tree`` at the leaf positions of ``treedef``, for cotangents and
    tangents that must mirror a value's structure. ``None`` stands for a zero
    subtree (one ``None`` per leaf). A different structure raises, naming both."""
    leaves: list = []

    def walk(d: TreeDef, x: Any) -> None:
        if d.kind is None:
            leaves.append(x)
            return
        if x is None:
            leaves.extend([None] * d.num_leaves)
            return
        node = _node(x)
        if node is None or not _same_kind(node[0], d.kind) or node[2] != d.aux \
                or len(node[1]) != len(d.children):
            raise TypeError(f"{what} has the structure {tree_flatten(tree)[1]}, but it must "
                             f"have {treedef} (None may stand for a zero part)")
        for c, child in zip(d.children, node[1]):
            walk(c, child)

    walk(treedef, tree)
    return leaves


def _same_kind(a: type, b: type) -> bool:
    return a is b or (a in (tuple, list) and b in (tuple, list))


def tree_map(fn: Callable, tree: Any, *rest: Any,
             is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """Apply ``fn`` leaf-wise over one or more trees of the same structure."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for r in rest:
        r_leaves, r_def = tree_flatten(r, is_leaf)
        if r_def != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} vs {r_def}")
        others.append(r_leaves)
    return tree_unflatten(treedef, [fn(*xs) for xs in zip(leaves, *others)])


def tree_leaves(tree: Any) -> list:
    return tree_flatten(tree)[0]
