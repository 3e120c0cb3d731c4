"""The error a layer raises for an input it cannot take, located in the model.

A layer knows only its own expectation; the containers around it know its name. Each
container on the way out prefixes the name it gives the failing child, so the message
reads ``layers.2.layers.0: Dense(8 => 4) expects ...``, the same dotted path as
`state_dict` uses for that layer's arrays.
"""

from __future__ import annotations

__all__ = ["ShapeError"]


class ShapeError(ValueError):
    """An input of the wrong shape for a layer; ``path`` is where the layer sits."""

    def __init__(self, detail: str, path: str = "") -> None:
        self.detail, self.path = detail, path
        super().__init__(f"{path}: {detail}" if path else detail)

    def within(self, name: object) -> ShapeError:
        """The same error, seen from the container that calls this layer ``name``."""
        return ShapeError(self.detail, f"{name}.{self.path}" if self.path else str(name))
