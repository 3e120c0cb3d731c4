"""Where programs run, and how arrays cross into and out of jax.

Inputs may be NumPy arrays (copied to the device by the executable's call),
CuPy arrays (imported zero-copy through DLPack, so they alias the CuPy
buffer) or jax arrays (used in place). Outputs are jax arrays that stay on
the device until converted with ``np.asarray`` or `to_cupy`.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import numpy as np

from . import _jax_adapter
from .errors import DeviceNotFoundError

_PLATFORMS = ("cpu", "gpu", "tpu")


def resolve_device(device: str | jax.Device | None) -> jax.Device | None:
    """A jax device from ``"cpu"|"gpu"|"tpu"`` or a jax device; ``None`` stays ``None``
    (the device is then taken from the inputs, or jax's default)."""
    if device is None or isinstance(device, jax.Device):
        return device
    if not isinstance(device, str) or device.lower() not in _PLATFORMS:
        raise ValueError(f"device must be one of {_PLATFORMS} or a jax.Device, got {device!r}")
    try:
        found = jax.devices(device.lower())
    except RuntimeError:
        found = []
    if not found:
        present = sorted({d.platform for d in jax.devices()})
        raise DeviceNotFoundError(
            f"device={device!r} was requested but this process has no {device} device (jax "
            f"sees: {', '.join(present)}). Install the matching jaxlib plugin (e.g. "
            "'jax[cuda12]') or pass device='cpu'.")
    return found[0]


def _cupy_array_type() -> type | None:
    cupy = sys.modules.get("cupy")
    return cupy.ndarray if cupy is not None else None


def is_cupy(x: Any) -> bool:
    cp = _cupy_array_type()
    return cp is not None and isinstance(x, cp)


def device_of(x: Any) -> jax.Device | None:
    """The device an input already lives on, if it says so (jax and CuPy arrays)."""
    if isinstance(x, jax.Array):
        devices = x.devices()
        return next(iter(devices)) if len(devices) == 1 else None
    if is_cupy(x):
        return _gpu_by_ordinal(x.device.id)
    return None


def _gpu_by_ordinal(ordinal: int) -> jax.Device:
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if ordinal >= len(gpus):
        raise DeviceNotFoundError(
            f"a CuPy array on GPU {ordinal} was passed, but jax sees {len(gpus)} GPU(s); "
            "install a CUDA-enabled jaxlib ('jax[cuda12]')")
    return gpus[ordinal]


def to_jax(x: Any, sharding: jax.sharding.Sharding) -> Any:
    """One input leaf ready for an executable placed by ``sharding``."""
    if isinstance(x, jax.Array):
        return x if x.sharding == sharding else jax.device_put(x, sharding)
    if is_cupy(x):
        return to_jax(_jax_adapter.from_dlpack(x), sharding)
    return x  # NumPy arrays and scalars: the executable's call copies them over


def to_cupy(tree: Any) -> Any:
    """Every jax-array leaf of ``tree`` as a CuPy array sharing its GPU buffer."""
    import cupy

    from wengert.ad import tree_map

    return tree_map(lambda x: cupy.from_dlpack(x) if isinstance(x, jax.Array) else x, tree)


def to_numpy(tree: Any) -> Any:
    """Every jax-array leaf of ``tree`` copied to a NumPy array."""
    from wengert.ad import tree_map

    return tree_map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, tree)
