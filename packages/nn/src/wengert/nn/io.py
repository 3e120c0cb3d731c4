"""Saving and loading model weights by name (safetensors, or ``.npz``).

Names are dotted paths (``layers.0.weight``, ``layers.1.mean``). Writes are
atomic: the file is written next to its destination, flushed, then renamed
over it, so a crash leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from wengert import ad

from .core import Buffer, Const, flatten_model, is_array, named_leaves

__all__ = ["load", "save", "state_dict"]


def _host(x: Any) -> np.ndarray:
    return np.ascontiguousarray(x.get() if hasattr(x, "get") and not isinstance(
        x, np.ndarray) else x)


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """Every array of ``model`` (parameters, frozen or not, and state) by name."""
    return {name: _host(x) for name, x in named_leaves(model) if is_array(x)}


def _use_safetensors(path: Path) -> bool:
    if path.suffix == ".npz":
        return False
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def save(path: str | os.PathLike, model: Any) -> Path:
    """Write ``model``'s arrays to ``path`` atomically. Without the safetensors
    package (or for a ``.npz`` path) the format is NumPy's ``.npz``;
    returns the path written."""
    path = Path(path)
    tensors = state_dict(model)
    if not _use_safetensors(path) and path.suffix != ".npz":
        path = path.with_suffix(".npz")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if path.suffix == ".npz":
                np.savez(f, **tensors)
            else:
                from safetensors.numpy import save

                f.write(save(tensors))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz" or not _use_safetensors(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    from safetensors.numpy import load_file

    return load_file(str(path))


def load(path: str | os.PathLike, like: Any) -> Any:
    """A copy of ``like`` with the arrays stored at ``path``.

    Every array of ``like`` must be in the file with the same shape (its
    dtype and device are kept); otherwise a `ValueError` names the parameter.
    """
    stored = _read(Path(path))
    names = [name for name, _ in named_leaves(like)]
    leaves, treedef = flatten_model(like)
    if len(names) != len(leaves):  # pragma: no cover - a layer outside named_leaves' rules
        raise TypeError("load: could not name every leaf of the model")
    new = []
    shared: dict[int, Any] = {}  # tied weights load as one array again
    for name, leaf in zip(names, leaves):
        value = leaf.value if isinstance(leaf, (Buffer, Const)) else leaf
        if not is_array(value):
            new.append(leaf)
            continue
        if name not in stored:
            raise ValueError(f"load: {path} has no array {name!r} (shape {value.shape})")
        a = stored[name]
        if a.shape != value.shape:
            raise ValueError(f"load: parameter {name!r} has shape {a.shape} in {path} but "
                             f"{value.shape} in the model")
        a = a.astype(value.dtype, copy=False)
        if not isinstance(value, np.ndarray):
            a = ad.to_device(a, "gpu")
        if not isinstance(leaf, (Buffer, Const)):
            a = shared.setdefault(id(leaf), a)
        new.append(Buffer(a) if isinstance(leaf, Buffer) else Const(a) if isinstance(
            leaf, Const) else a)
    return ad.tree_unflatten(treedef, new)
