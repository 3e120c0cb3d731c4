"""``r_`` and ``c_``: NumPy's index-expression concatenators, for traced values.

``np.r_[x, y]`` itself converts its items with ``np.array``, which no NumPy
protocol lets a traced value intercept; ``wnp.r_[x, y]`` is the
differentiable spelling. Items are arrays, scalars, or slices (which become
constant ranges, ``1:5`` or ``0:1:5j`` as NumPy); a leading string ``"axis"``
or ``"axis,ndmin,trans1d"`` sets the layout, as NumPy's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import as_array, shape_of
from ._shape import concatenate, reshape, transpose


class _Concatenator:
    __slots__ = ("axis", "ndmin", "trans1d")

    def __init__(self, axis: int, ndmin: int, trans1d: int) -> None:
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key: Any) -> Any:
        items = list(key) if isinstance(key, tuple) else [key]
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        if items and isinstance(items[0], str):
            directive = items.pop(0)
            if directive in ("r", "c"):
                raise NotImplementedError(f"wnp.r_['{directive}', ...] (a matrix result) is "
                                          "not supported; build the 2-d array explicitly")
            parts = [int(p) for p in directive.split(",")]
            axis, ndmin, trans1d = (parts + [ndmin, trans1d][len(parts) - 1:])[:3]
        arrays = [self._item(x, ndmin, trans1d) for x in items]
        return concatenate(arrays, axis=axis)

    @staticmethod
    def _item(x: Any, ndmin: int, trans1d: int) -> Any:
        if isinstance(x, slice):
            return np.r_[x] if ndmin <= 1 else _Concatenator._item(np.r_[x], ndmin, trans1d)
        a = as_array(x)
        nd = a.ndim
        if nd == 0:
            a = reshape(a, (1,))
            nd = 1
        if nd >= ndmin:
            return a
        a = reshape(a, (1,) * (ndmin - nd) + shape_of(a))
        if trans1d == -1:
            return a
        k2 = ndmin - nd
        k1 = trans1d + k2 + 1 if trans1d < 0 else trans1d
        order = list(range(ndmin))
        return transpose(a, order[:k1] + order[k2:] + order[k1:k2])


r_ = _Concatenator(0, 1, -1)
c_ = _Concatenator(-1, 2, 0)
