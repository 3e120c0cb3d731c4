"""Labels to one-hot arrays and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["onecold", "onehot"]


def onehot(labels: Any, classes: int | Sequence[Any], dtype: Any = np.float32) -> np.ndarray:
    """``labels`` of any shape -> ``labels.shape + (n_classes,)``.

    ``classes`` is the number of classes (labels are ``0..n-1``) or the
    sequence of class values.
    """
    labels = np.asarray(labels)
    if isinstance(classes, (int, np.integer)):
        index = labels.astype(np.int64)
        n = int(classes)
    else:
        lookup = {c: i for i, c in enumerate(classes)}
        try:
            index = np.vectorize(lookup.__getitem__, otypes=[np.int64])(labels)
        except KeyError as exc:
            raise ValueError(f"onehot: label {exc.args[0]!r} is not one of the classes") from None
        n = len(lookup)
    if index.size and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"onehot: labels must lie in 0..{n - 1}")
    return np.eye(n, dtype=dtype)[index]


def onecold(scores: Any, classes: Sequence[Any] | None = None, axis: int = -1) -> np.ndarray:
    """The index (or class value) of the largest score along ``axis``."""
    index = np.asarray(scores).argmax(axis=axis) if not hasattr(scores, "get") \
        else scores.argmax(axis=axis).get()
    return index if classes is None else np.asarray(classes)[index]
