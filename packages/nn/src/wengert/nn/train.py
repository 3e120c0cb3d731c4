"""The convenience training loop, its callbacks, and one training step.

``nn.train(model, loss, data, opt)`` runs ``loss(model, *batch)`` over every
batch of ``data`` for ``epochs`` epochs, taking one optimiser step per
batch, with a tqdm progress bar. Callbacks are called after every step and
every epoch; one returning ``True`` (or raising `StopTraining`) ends training.

Training never writes into the model it was given: `train` works on a copy
whose state buffers (BatchNorm statistics) are its own, and returns it. A
non-finite loss or gradient stops training before the step is applied, with
a `NonFiniteError` naming the epoch, the step and the offending parameter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from wengert import ad

from .core import Buffer, Const, flatten_model, is_array, named_leaves, trainmode
from .optimisers import Optimiser, OptState
from .state import withgradient

__all__ = ["EarlyStopping", "Logger", "NonFiniteError", "StopTraining", "TrainInfo", "train",
           "train_step"]


class StopTraining(Exception):
    """Raise from a callback (or the loss) to end `train` early."""


class NonFiniteError(FloatingPointError):
    """The loss or a gradient became NaN or infinite; the step was not applied."""


@dataclass
class TrainInfo:
    """What callbacks see: the current model and optimiser state, the epoch
    (from 1), the step within it, the last batch loss, and the per-epoch mean
    losses so far. ``end_of_epoch`` tells the two kinds of call apart."""

    model: Any
    opt_state: OptState
    epoch: int = 0
    step: int = 0
    loss: float = math.nan
    history: list[float] = field(default_factory=list)
    end_of_epoch: bool = False


def train_step(model: Any, loss: Callable[..., Any], batch: Sequence[Any], opt: Optimiser,
               opt_state: OptState) -> tuple[Any, OptState, float]:
    """One gradient step: ``(model, opt_state, loss value)``. Running state
    (BatchNorm statistics) recorded by the forward pass is committed."""
    value, (grads,) = withgradient(lambda m: loss(m, *batch), model)
    value = float(value)
    if not math.isfinite(value):
        raise NonFiniteError(f"the loss is {value}")
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing squares are expected
        finite = all(_all_finite(g.value if isinstance(g, (Buffer, Const)) else g)
                     for g in flatten_model(grads)[0])
    if not finite:
        for name, g in named_leaves(grads):  # the same leaves, now with their names
            if is_array(g) and not bool(np.isfinite(g).all()):
                raise NonFiniteError(f"the loss is {value:.6g} but the gradient of "
                                     f"{name or 'the model'} holds NaN or infinite values")
    model, opt_state = opt.update(model, grads, opt_state)
    return model, opt_state, value


def _all_finite(g: Any) -> bool:
    """No NaN or infinity in ``g`` (anything but an array passes). A float32/64
    array first gets BLAS's dot product with itself, a fraction of the cost of
    ``isfinite(g).all()``: it is finite exactly when every entry is, unless the
    squares overflow, and then the entries are checked one by one."""
    if not is_array(g):
        return True
    if type(g) is np.ndarray and g.dtype in _BLAS_FLOATS and g.flags.c_contiguous:
        flat = g.reshape(-1)
        if math.isfinite(np.dot(flat, flat)):
            return True
    return bool(np.isfinite(g).all())


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _with_own_state(model: Any) -> Any:
    """``model`` with fresh copies of its state buffers, so that training the result
    leaves the caller's model (its BatchNorm statistics included) untouched."""
    copies: dict[int, Buffer] = {}

    def copy(leaf: Any) -> Any:
        if not isinstance(leaf, Buffer):
            return leaf
        cell = leaf.cell
        if id(cell) not in copies:  # a buffer shared by two layers stays shared
            copies[id(cell)] = Buffer(ad.tree_map(
                lambda a: a.copy() if is_array(a) else a, cell.value))
        return copies[id(cell)]

    leaves, treedef = flatten_model(model)  # Buffers as leaves
    return ad.tree_unflatten(treedef, [copy(leaf) for leaf in leaves])


def _as_tuple(batch: Any) -> tuple:
    return batch if isinstance(batch, tuple) else (batch,)


def train(model: Any, loss: Callable[..., Any], data: Iterable[Any], opt: Optimiser, *,
          epochs: int = 1, callbacks: Sequence[Callable[[TrainInfo], Any]] = (),
          opt_state: OptState | None = None, progress: bool = True,
          train_mode: bool = True) -> tuple[Any, OptState]:
    """Train and return ``(model, opt_state)``; the model comes back in the
    mode it was trained in (call `testmode` to evaluate). The model passed in
    is not modified. Raises `NonFiniteError` at the first NaN or infinite loss
    or gradient, and `ValueError` when an epoch gets no batches."""
    from tqdm.auto import tqdm

    model = _with_own_state(trainmode(model) if train_mode else model)
    info = TrainInfo(model, opt_state if opt_state is not None else opt.init(model))
    try:
        for epoch in range(1, epochs + 1):
            info.epoch, total, count = epoch, 0.0, 0
            bar = tqdm(data, desc=f"epoch {epoch}/{epochs}", disable=not progress,
                       leave=False, mininterval=0.5)
            for step, batch in enumerate(bar, 1):
                try:
                    info.model, info.opt_state, info.loss = train_step(
                        info.model, loss, _as_tuple(batch), opt, info.opt_state)
                except NonFiniteError as exc:
                    bar.close()
                    raise NonFiniteError(
                        f"train: epoch {epoch}, step {step}: {exc}; training stopped before "
                        "this step (check the batch for NaN/inf, lower the learning rate, or "
                        "clip gradients)") from None
                info.step, info.end_of_epoch = step, False
                total, count = total + info.loss, count + 1
                bar.set_postfix(loss=f"{info.loss:.4g}", refresh=False)
                if _notify(callbacks, info):
                    raise StopTraining
            bar.close()
            if count == 0:
                raise ValueError(
                    f"train: epoch {epoch} got no batches from the data; pass a non-empty "
                    "DataLoader or list (a generator is used up after one epoch)")
            info.history.append(total / count)
            info.end_of_epoch = True
            if _notify(callbacks, info):
                raise StopTraining
    except StopTraining:
        pass
    return info.model, info.opt_state


def _notify(callbacks: Sequence[Callable[[TrainInfo], Any]], info: TrainInfo) -> bool:
    stop = False
    for cb in callbacks:
        stop = bool(cb(info)) or stop
    return stop


class Logger:
    """Print the loss at most once every ``every`` seconds (and at each epoch's end)."""

    def __init__(self, every: float = 5.0, print_fn: Callable[[str], Any] | None = None) -> None:
        from tqdm.auto import tqdm

        self.every, self.print_fn = every, print_fn or tqdm.write
        self._last = -math.inf

    def __call__(self, info: TrainInfo) -> None:
        now = time.monotonic()
        if info.end_of_epoch:
            self.print_fn(f"epoch {info.epoch}: mean loss {info.history[-1]:.5g}")
        elif now - self._last >= self.every:
            self._last = now
            self.print_fn(f"epoch {info.epoch} step {info.step}: loss {info.loss:.5g}")


class EarlyStopping:
    """Stop when ``metric(model)`` (default: the epoch's mean training loss)
    has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, patience: int = 3, metric: Callable[[Any], float] | None = None,
                 min_delta: float = 0.0) -> None:
        self.patience, self.metric, self.min_delta = patience, metric, min_delta
        self.best, self.bad_epochs = math.inf, 0

    def __call__(self, info: TrainInfo) -> bool:
        if not info.end_of_epoch:
            return False
        value = info.history[-1] if self.metric is None else float(self.metric(info.model))
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience
