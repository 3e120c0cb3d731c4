"""Moving trees of arrays between NumPy (CPU) and CuPy (GPU)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .tree import tree_map


def _cupy() -> Any:
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("to_device(..., 'gpu') needs CuPy: pip install 'wengert-ad[cuda]' "
                           "on a machine with a CUDA GPU") from exc
    return cupy


def to_device(tree: Any, device: str) -> Any:
    """Copy every array leaf of ``tree`` to ``"cpu"`` (NumPy) or ``"gpu"`` (CuPy)."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"to_device: device must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu":
        cupy = _cupy()
        return tree_map(lambda x: cupy.asarray(x) if isinstance(x, np.ndarray) else x, tree)

    def to_cpu(x: Any) -> Any:
        get = getattr(x, "get", None)
        if get is not None and type(x).__module__.startswith("cupy"):
            return get()
        return x

    return tree_map(to_cpu, tree)
