"""Moving whole models between NumPy (CPU) and CuPy (GPU)."""

from __future__ import annotations

from typing import Any

from wengert import ad

from .core import Buffer, Const

__all__ = ["to_device"]


def to_device(model: Any, device: str) -> Any:
    """A copy of ``model`` (any tree) with every array, including frozen
    parameters and `Buffer` state, on ``"cpu"`` or ``"gpu"``."""
    def move(leaf: Any) -> Any:
        if isinstance(leaf, Buffer):
            return Buffer(ad.to_device(leaf.value, device))
        if isinstance(leaf, Const):
            return Const(ad.to_device(leaf.value, device))
        return ad.to_device(leaf, device)

    leaves, treedef = ad.tree_flatten(model)
    return ad.tree_unflatten(treedef, [move(x) for x in leaves])
