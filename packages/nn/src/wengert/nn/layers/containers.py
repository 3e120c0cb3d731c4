"""Combinators: models are plain function composition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wengert.ad.numpy as wnp

from ..core import Layer, static
from ..errors import ShapeError

__all__ = ["Chain", "Maxout", "Parallel", "SkipConnection"]


class Chain(Layer):
    """``Chain(f, g, h)(x) == h(g(f(x)))``; any callable is a layer.
    ``Chain(conv=..., head=...)`` names the layers (``chain["head"]``)."""

    layers: tuple | dict

    def __init__(self, *layers: Callable, **named: Callable) -> None:
        if layers and named:
            raise TypeError("Chain takes positional or named layers, not both")
        self.layers = dict(named) if named else tuple(layers)

    def __call__(self, x: Any) -> Any:
        named = self.layers.items() if isinstance(self.layers, dict) else enumerate(self.layers)
        for name, f in named:
            try:
                x = f(x)
            except ShapeError as exc:
                raise exc.within(f"layers.{name}") from None
        return x

    def __getitem__(self, i: int | str | slice) -> Any:
        if isinstance(i, slice):
            if isinstance(self.layers, dict):
                return Chain(**dict(list(self.layers.items())[i]))
            return Chain(*self.layers[i])
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def _sublayers(self) -> list:
        if isinstance(self.layers, dict):
            return list(self.layers.items())
        return [("", f) for f in self.layers]


class Parallel(Layer):
    """``connection(*(f(x) for f in layers))``; with a tuple input of matching
    length, each layer gets its own element."""

    layers: tuple
    connection: Callable = static()

    def __init__(self, connection: Callable, *layers: Callable) -> None:
        self.connection, self.layers = connection, tuple(layers)

    def __call__(self, x: Any) -> Any:
        xs = x if isinstance(x, tuple) and len(x) == len(self.layers) else (x,) * len(self.layers)
        outputs = []
        for i, (f, xi) in enumerate(zip(self.layers, xs)):
            try:
                outputs.append(f(xi))
            except ShapeError as exc:
                raise exc.within(f"layers.{i}") from None
        return self.connection(*outputs)

    def _sublayers(self) -> list:
        return [("connection", self.connection)] + [("", f) for f in self.layers]


class SkipConnection(Layer):
    """``connection(layer(x), x)``: residual (``+``) or concatenating blocks."""

    layer: Callable
    connection: Callable = static()

    def __init__(self, layer: Callable, connection: Callable) -> None:
        self.layer, self.connection = layer, connection

    def __call__(self, x: Any) -> Any:
        try:
            y = self.layer(x)
        except ShapeError as exc:
            raise exc.within("layer") from None
        return self.connection(y, x)

    def _sublayers(self) -> list:
        return [("", self.layer), ("connection", self.connection)]


class Maxout(Layer):
    """Elementwise maximum over several layers' outputs (Goodfellow et al. 2013).
    ``Maxout(make, n)`` calls ``make()`` ``n`` times."""

    layers: tuple

    def __init__(self, *layers: Callable) -> None:
        if len(layers) == 2 and isinstance(layers[1], int) and not isinstance(layers[0], Layer):
            layers = tuple(layers[0]() for _ in range(layers[1]))
        self.layers = tuple(layers)

    def __call__(self, x: Any) -> Any:
        out = self.layers[0](x)
        for f in self.layers[1:]:
            out = wnp.maximum(out, f(x))
        return out

    def _sublayers(self) -> list:
        return [("", f) for f in self.layers]
