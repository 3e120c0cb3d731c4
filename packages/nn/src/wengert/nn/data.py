"""DataLoader: mini-batches from arrays or any indexable dataset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from wengert import ad

from .init import default_rng

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over mini-batches of ``data``.

    ``data`` is an array, a tree of arrays sharing their first dimension
    (tuple, list, dict, ...), or any object with ``len`` and integer
    ``__getitem__`` returning such trees (the items are stacked). Shuffling
    draws a new order each epoch from ``rng`` (a seed or a Generator), so
    runs are reproducible. ``partial=False`` drops a short last batch.
    """

    def __init__(self, data: Any, batchsize: int = 1, *, shuffle: bool = False,
                 rng: int | np.random.Generator | None = None, partial: bool = True) -> None:
        if isinstance(batchsize, bool) or not isinstance(batchsize, (int, np.integer)) \
                or batchsize < 1:
            raise ValueError(f"DataLoader: batchsize must be a whole number >= 1, got {batchsize!r}")
        self.data, self.batchsize = data, int(batchsize)
        self.shuffle, self.partial = shuffle, partial
        self.rng = default_rng(rng)
        self._leaves, self._treedef = self._as_arrays(data)
        self.n = len(self._leaves[0]) if self._leaves is not None else len(data)

    @staticmethod
    def _as_arrays(data: Any) -> tuple[list | None, Any]:
        leaves, treedef = ad.tree_flatten(data)
        if leaves and all(hasattr(x, "shape") and len(x.shape) > 0 for x in leaves):
            n = {len(x) for x in leaves}
            if len(n) != 1:
                raise ValueError(f"DataLoader: the arrays have different lengths {sorted(n)}")
            return leaves, treedef
        return None, None

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batchsize)
        return full + (1 if rest and self.partial else 0)

    def _batch(self, index: np.ndarray) -> Any:
        if self._leaves is not None:
            return ad.tree_unflatten(self._treedef, [x[index] for x in self._leaves])
        items = [self.data[int(i)] for i in index]
        flat = [ad.tree_flatten(item) for item in items]
        treedef = flat[0][1]
        return ad.tree_unflatten(treedef, [np.stack(parts) for parts in
                                           zip(*(leaves for leaves, _ in flat))])

    def __iter__(self) -> Iterator[Any]:
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for b in range(len(self)):
            yield self._batch(order[b * self.batchsize:(b + 1) * self.batchsize])
