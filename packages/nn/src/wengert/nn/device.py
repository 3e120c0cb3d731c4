"""Moving whole models between NumPy (CPU) and CuPy (GPU)."""

from __future__ import annotations

from typing import Any

from wengert import ad

from .core import Buffer, Const, flatten_model

__all__ = ["to_device"]


def to_device(model: Any, device: str) -> Any:
    """A copy of ``model`` (any tree) with every array, including frozen
    parameters and `Buffer` state, on ``"cpu"`` or ``"gpu"``; an array
    shared by several layers (tied weights) stays shared."""
    moved: dict[int, Any] = {}

    def move(leaf: Any) -> Any:
        if leaf is None:
            return None
        if isinstance(leaf, (Buffer, Const)):
            return type(leaf)(None if leaf.value is None else ad.to_device(leaf.value, device))
        if id(leaf) not in moved:
            moved[id(leaf)] = ad.to_device(leaf, device)
        return moved[id(leaf)]

    leaves, treedef = flatten_model(model)
    return ad.tree_unflatten(treedef, [move(x) for x in leaves])
