"""The one place that knows how jax versions differ.

Everything else in `wengert.xla` uses jax's stable public API; anything that
moved between jax releases (the x64 switch, the shape of `cost_analysis`) is
bridged here, so supporting a new jax means editing this module only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax


def x64_enabled() -> bool:
    """Whether jax currently keeps 64-bit types (its default is to downcast them)."""
    return bool(jax.config.jax_enable_x64)


def _x64_switch() -> Any:
    switch = getattr(jax, "enable_x64", None)  # jax >= 0.7
    if switch is None:
        from jax.experimental import enable_x64 as switch  # jax 0.6
    return switch


_ENABLE_X64 = _x64_switch()


@contextlib.contextmanager
def x64_scope(needed: bool) -> Iterator[None]:
    """Keep 64-bit types while lowering or running a graph that uses them.

    Graphs without 64-bit types run under the process's own setting, so their
    index arithmetic stays 32-bit where jax prefers it.
    """
    if not needed or x64_enabled():
        yield
        return
    with _ENABLE_X64(True):
        yield


def cost_analysis(compiled: Any) -> dict:
    """jax < 0.7 returned a one-element list of dicts; later versions a dict."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return dict(cost or {})


def from_dlpack(x: Any) -> jax.Array:
    """Zero-copy import of a DLPack producer (a CuPy array): the buffer is shared."""
    return jax.dlpack.from_dlpack(x)
