"""Optimisers as functional state trees (after Optimisers.jl).

A rule transforms one parameter's gradient into the step to subtract, with
a per-parameter state: ``state = rule.init(x)``, ``step, state =
rule.apply(state, x, dx, t)``. `Optimiser` lifts a rule to whole models:

    opt = nn.Adam(1e-3)
    state = opt.init(model)
    model, state = opt.update(model, grads, state)

The state mirrors the model's tree. Leaves without a gradient (frozen
parameters, `Buffer` state, integers, functions) get no state and no update.
Rules compose: ``OptimiserChain(ClipNorm(1.0), WeightDecay(1e-4), Adam())``.
Learning rates may be schedules (callables of the step number, see
`wengert.nn.schedules`). Every rule keeps the parameter's dtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from wengert import ad

from .core import Const, flatten_model, is_array, named_leaves, trainable

__all__ = ["AMSGrad", "AdaDelta", "AdaGrad", "Adam", "AdamW", "ClipGlobalNorm", "ClipGrad",
           "ClipNorm", "Descent", "Lion", "Momentum", "NAdam", "Nesterov", "OptState",
           "Optimiser", "OptimiserChain", "ParameterGroups", "RMSProp", "WeightDecay"]

Array = Any
Rate = float | Callable[[int], float]


def _rate(eta: Rate, t: Any) -> Any:
    """The learning rate at step ``t``; under staging (``t`` an array) a schedule's value
    stays an array expression."""
    if not callable(eta):
        return float(eta)
    return float(eta(t)) if isinstance(t, int) else eta(t)


def _like(scalar: Any, x: Array) -> Any:
    """A step-dependent scalar in ``x``'s dtype (a traced step count is an integer array,
    and float32 parameters must not be promoted by its float64 powers)."""
    return scalar.astype(x.dtype) if hasattr(scalar, "astype") else scalar


def _zeros(x: Array) -> Array:
    return np.zeros_like(x)


class Optimiser:
    """Base of every rule; gives each the model-level ``init``/``update``."""

    def init_leaf(self, x: Array) -> Any:
        return None

    def init_named(self, name: str, x: Array) -> Any:
        """A parameter's state, knowing its dotted name (`ParameterGroups` uses it)."""
        return self.init_leaf(x)

    def rescale(self, grads: list) -> list:
        """A pass over every parameter's gradient before the per-parameter rules
        (`ClipGlobalNorm`); the identity for per-parameter rules."""
        return grads

    def apply(self, state: Any, x: Array, dx: Array, t: int) -> tuple[Array, Any]:
        """The rule itself, so every subclass must define it (the base has no step)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement apply(state, x, dx, t) -> (step, new_state): "
            "the amount to subtract from parameter x given its gradient dx at step t")

    # -- whole models -------------------------------------------------------------------
    def init(self, model: Any) -> OptState:
        leaves, treedef = flatten_model(model)
        _refuse_views(model, leaves)
        owners = _owners(leaves)
        names = [n for n, _ in named_leaves(model)]
        return OptState(0, ad.tree_unflatten(treedef, [
            _Leaf(self.init_named(names[i], x)) if trainable(x) and owners[i] == i else None
            for i, x in enumerate(leaves)]))

    def update(self, model: Any, grads: Any, state: OptState) -> tuple[Any, OptState]:
        """One step: the new model and the new state (neither input is modified).

        An array held by several layers (tied weights) is one parameter: its
        gradients are summed, it is updated once, and every layer gets the
        same new array."""
        leaves, treedef = flatten_model(model)
        g_leaves, g_def = flatten_model(grads)
        s_leaves = state._leaves()
        if len(g_leaves) != len(leaves) or g_def != treedef:
            raise ValueError(f"update: the gradient's structure {g_def} is not the model's "
                             f"{treedef}; pass the gradient of this model "
                             "(ad.gradient(loss, model)[0])")
        if len(s_leaves) != len(leaves):
            raise ValueError(f"update: the optimiser state has {len(s_leaves)} leaves but the "
                             f"model {len(leaves)}; pass the state from init(model)")
        is_trainable = [trainable(x) for x in leaves]
        owners = _owners(leaves, is_trainable)
        if owners is not _UNTIED:
            g_leaves = _sum_tied(g_leaves, owners)
        g_leaves = self.rescale([g if is_trainable[i] and owners[i] == i else None
                                 for i, g in enumerate(g_leaves)])
        t = state.step + 1
        new_x, new_s = [], []
        for i, (x, g, s) in enumerate(zip(leaves, g_leaves, s_leaves)):
            if owners[i] != i:  # a tied copy: the owner's new array
                new_x.append(new_x[owners[i]])
                new_s.append(None)
                continue
            if not is_trainable[i] or g is None or isinstance(g, Const):
                new_x.append(x)
                new_s.append(s)
                continue
            if s is None or isinstance(s, Const):  # e.g. a parameter thawed after init
                s = _Leaf(self.init_named(list(named_leaves(model))[i][0], x))
            # Gradients of matrix products can be transposed views; elementwise
            # rules run several times faster on the parameter's own (C) layout.
            if is_array(g) and not g.flags.c_contiguous:
                g = g.copy(order="C")
            step, inner = self.apply(s.state, x, g, t)
            new_x.append(_subtract(x, step, g, inner))
            new_s.append(_Leaf(inner))
        tree = ad.tree_unflatten(treedef, new_s)
        return ad.tree_unflatten(treedef, new_x), OptState(t, tree, (tree, new_s))


def _subtract(x: Array, step: Array, g: Array, inner: Any) -> Array:
    """``x - step``, into ``step``'s memory when the step owns it: a fresh NumPy
    array that is not the gradient, the parameter or part of the new state (as
    PyTorch's in-place updates, without a new parameter-sized buffer per step)."""
    if (type(step) is np.ndarray and step.base is None and step.flags.writeable
            and step is not g and step is not x and type(x) is np.ndarray
            and step.dtype == x.dtype and step.shape == x.shape
            and (inner is None or not any(leaf is step for leaf in ad.tree_leaves(inner)))):
        return np.subtract(x, step, out=step)
    return x - step


@dataclasses.dataclass
class OptState:
    """The optimiser's step count and a model-shaped tree of per-parameter states."""

    step: int
    tree: Any
    #: ``(tree, its leaves)`` as `update` built them: the next step need not walk
    #: the state again (checked by identity, so replacing ``tree`` is safe).
    flat: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        # The tree holds layers whose arrays are replaced by states: the layers' own
        # summaries cannot print it, so list the states by parameter path instead.
        states = [f"{name or 'x'}: {_describe_state(leaf.state)}"
                  for name, leaf in named_leaves(self.tree) if isinstance(leaf, _Leaf)]
        shown = states[:_REPR_STATES] + (
            [f"... {len(states) - _REPR_STATES} more"] if len(states) > _REPR_STATES else [])
        return f"OptState(step={self.step}, {{{', '.join(shown)}}})"

    def _leaves(self) -> list:
        if self.flat is not None and self.flat[0] is self.tree:
            return self.flat[1]
        return ad.tree_flatten(self.tree, is_leaf=_is_state_leaf)[0]


# As a tree an OptState is its step and its state tree: the ``flat`` cache is no child, so a
# state after `update` has the structure of the state from `init` (one compiled signature).
ad.register_tree(OptState, lambda s: ((s.step, s.tree), None),
                 lambda _, children: OptState(*children))


@dataclasses.dataclass
class _Leaf:
    state: Any


_REPR_STATES = 8


def _describe_state(state: Any) -> str:
    """Arrays as their shapes, containers as themselves: a readable state summary."""
    if hasattr(state, "shape"):
        return f"array{tuple(state.shape)}"
    if isinstance(state, (tuple, list)):
        return "(" + ", ".join(_describe_state(s) for s in state) + ")"
    return repr(state)


def _is_state_leaf(x: Any) -> bool:
    return x is None or isinstance(x, (_Leaf, Const))


class _Untied:
    """``owners`` of a model without shared arrays: every leaf owns itself."""

    def __getitem__(self, i: int) -> int:
        return i


_UNTIED = _Untied()


def _owners(leaves: list, is_trainable: list | None = None) -> Any:
    """For each leaf, the index of the first leaf holding the same trainable
    array (itself unless weights are tied). ``is_trainable``: `trainable` of
    each leaf, where the caller has it already."""
    if is_trainable is None:
        is_trainable = [trainable(x) for x in leaves]
    first: dict[int, int] = {}
    owners = []
    for i, x in enumerate(leaves):
        owners.append(first.setdefault(id(x), i) if is_trainable[i] else i)
    return _UNTIED if len(first) == sum(is_trainable) else owners


def _refuse_views(model: Any, leaves: list) -> None:
    """Weights tied through a view (``dense.weight = emb.weight.T``) would be
    untied by the first update without a word: refuse them, naming the fix."""
    first: dict[int, tuple[int, np.ndarray]] = {}  # id of the memory's owner -> leaf
    for i, x in enumerate(leaves):
        if not (isinstance(x, np.ndarray) and trainable(x)):
            continue
        root = x
        while isinstance(root.base, np.ndarray):
            root = root.base
        j, y = first.setdefault(id(root), (i, x))
        if y is not x and np.shares_memory(x, y):
            names = [n for n, _ in named_leaves(model)]
            raise ValueError(
                f"{names[i]!r} is a view of the memory of {names[j]!r}: weights tied through "
                "a view (e.g. a transpose) would come apart at the first update. Tie weights "
                "by holding one array (the same object in both layers, or "
                "nn.Embedding.attend for an output layer that reuses the embedding), or pass "
                "a copy (np.copy) if they are not meant to be tied")


def _sum_tied(g_leaves: list, owners: list) -> list:
    """Each tied parameter's gradients summed into its owner's slot."""
    total = list(g_leaves)
    for i, j in enumerate(owners):
        if j != i and g_leaves[i] is not None and not isinstance(g_leaves[i], Const):
            total[j] = g_leaves[i] if total[j] is None else total[j] + g_leaves[i]
    return total


# ---- plain descent and momentum -----------------------------------------------------------

@dataclasses.dataclass
class Descent(Optimiser):
    """``x -= η dx``."""

    eta: Rate = 0.1

    def apply(self, state, x, dx, t):
        return dx * _rate(self.eta, t), state


@dataclasses.dataclass
class _Velocity(Optimiser):
    """Momentum and Nesterov keep the same velocity ``v = ρ v + dx``; only the
    ``_direction`` they step along differs."""

    eta: Rate = 0.01
    rho: float = 0.9

    def init_leaf(self, x):
        return _zeros(x)

    def apply(self, v, x, dx, t):
        v = self.rho * v + dx
        return self._direction(v, dx) * _rate(self.eta, t), v


@dataclasses.dataclass
class Momentum(_Velocity):
    """Heavy-ball momentum as PyTorch's SGD: ``v = ρ v + dx``, ``x -= η v``."""

    def _direction(self, v, dx):
        return v


@dataclasses.dataclass
class Nesterov(_Velocity):
    """Nesterov momentum as PyTorch's SGD(nesterov=True): ``x -= η (dx + ρ v)``."""

    eta: Rate = 0.001

    def _direction(self, v, dx):
        return dx + self.rho * v


# ---- adaptive rates -------------------------------------------------------------------------

@dataclasses.dataclass
class RMSProp(Optimiser):
    """Tieleman & Hinton: divide by a running RMS of the gradient (ε outside the root)."""

    eta: Rate = 0.001
    rho: float = 0.9
    eps: float = 1e-8

    def init_leaf(self, x):
        return _zeros(x)

    def apply(self, v, x, dx, t):
        v = self.rho * v + (1 - self.rho) * (dx * dx)
        return dx * _rate(self.eta, t) / (np.sqrt(v) + self.eps), v


@dataclasses.dataclass
class Adam(Optimiser):
    """Kingma & Ba (2015), with bias correction."""

    eta: Rate = 0.001
    beta: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def init_leaf(self, x):
        return _zeros(x), _zeros(x)

    def _moments(self, m, v, dx):
        # In place on one fresh array per moment (never the caller's): m + (1-β)(dx - m)
        # is PyTorch's lerp; large temporaries cost page faults as well as passes.
        b1, b2 = self.beta
        if not (is_array(m) and is_array(dx)):  # staged: no in-place updates
            return m + (1 - b1) * (dx - m), v + (1 - b2) * (dx * dx - v)
        m_new = dx - m
        m_new *= 1 - b1
        m_new += m
        v_new = dx * dx
        v_new -= v
        v_new *= 1 - b2
        v_new += v
        return m_new, v_new

    def _step(self, m, v_hat_source, t):
        b1, b2 = self.beta
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        if not is_array(m):  # staged (e.g. under xla.jit, with OptState.step an array)
            scale = _like(_rate(self.eta, t) / c1, m)
            return scale * m / (np.sqrt(v_hat_source) / _like(np.sqrt(c2), m) + self.eps)
        step = np.sqrt(v_hat_source)
        step *= float(1 / np.sqrt(c2))
        step += self.eps
        np.divide(m, step, out=step)
        step *= float(_rate(self.eta, t) / c1)
        return step

    def apply(self, state, x, dx, t):
        m, v = self._moments(*state, dx)
        return self._step(m, v, t), (m, v)


@dataclasses.dataclass
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as PyTorch:
    ``x -= η (adam_step / η + λ x)``."""

    weight_decay: float = 0.01

    def apply(self, state, x, dx, t):
        step, state = super().apply(state, x, dx, t)
        return step + x * float(_rate(self.eta, t) * self.weight_decay), state


@dataclasses.dataclass
class AMSGrad(Adam):
    """Adam with the running maximum of the second moment (Reddi et al. 2018)."""

    def init_leaf(self, x):
        return _zeros(x), _zeros(x), _zeros(x)

    def apply(self, state, x, dx, t):
        m, v = self._moments(state[0], state[1], dx)
        v_max = np.maximum(state[2], v)
        return self._step(m, v_max, t), (m, v, v_max)


@dataclasses.dataclass
class NAdam(Adam):
    """Adam with Nesterov momentum (Dozat 2016), PyTorch's form with its
    momentum-decay schedule ``μ_t = β1 (1 - 0.96^(t ψ) / 2)``."""

    momentum_decay: float = 0.004

    def init_leaf(self, x):
        return _zeros(x), _zeros(x), 1.0

    def apply(self, state, x, dx, t):
        m, v = self._moments(state[0], state[1], dx)
        b1, b2 = self.beta
        mu = b1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        prod = state[2] * mu
        eta = _rate(self.eta, t)
        denom = np.sqrt(v * float(1 / (1 - b2 ** t))) + self.eps
        step = (dx * float(eta * (1 - mu) / (1 - prod))
                + m * float(eta * mu_next / (1 - prod * mu_next))) / denom
        return step, (m, v, prod)


@dataclasses.dataclass
class AdaGrad(Optimiser):
    """Duchi et al. (2011): divide by the root of the summed squared gradients."""

    eta: Rate = 0.1
    eps: float = 1e-10

    def init_leaf(self, x):
        return _zeros(x)

    def apply(self, acc, x, dx, t):
        acc = acc + dx * dx
        return dx * _rate(self.eta, t) / (np.sqrt(acc) + self.eps), acc


@dataclasses.dataclass
class AdaDelta(Optimiser):
    """Zeiler (2012): step sizes from running RMS of gradients and of steps."""

    eta: Rate = 1.0
    rho: float = 0.9
    eps: float = 1e-6

    def init_leaf(self, x):
        return _zeros(x), _zeros(x)

    def apply(self, state, x, dx, t):
        acc, acc_step = state
        acc = self.rho * acc + (1 - self.rho) * (dx * dx)
        delta = np.sqrt(acc_step + self.eps) / np.sqrt(acc + self.eps) * dx
        acc_step = self.rho * acc_step + (1 - self.rho) * (delta * delta)
        return delta * _rate(self.eta, t), (acc, acc_step)


@dataclasses.dataclass
class Lion(Optimiser):
    """Chen et al. (2023): the sign of an interpolated momentum."""

    eta: Rate = 1e-4
    beta: tuple[float, float] = (0.9, 0.99)

    def init_leaf(self, x):
        return _zeros(x)

    def apply(self, m, x, dx, t):
        b1, b2 = self.beta
        step = np.sign(b1 * m + (1 - b1) * dx) * _rate(self.eta, t)
        return step.astype(x.dtype, copy=False), b2 * m + (1 - b2) * dx


# ---- gradient transformations and composition ---------------------------------------------

@dataclasses.dataclass
class ClipGrad(Optimiser):
    """Clamp every gradient entry to ``[-delta, delta]``."""

    delta: float = 10.0

    def apply(self, state, x, dx, t):
        return np.clip(dx, -self.delta, self.delta), state


@dataclasses.dataclass
class ClipNorm(Optimiser):
    """Rescale each parameter's gradient whose ``p``-norm exceeds ``omega``
    (per array, as Optimisers.jl; PyTorch's ``clip_grad_norm_``, one norm over
    all gradients, is `ClipGlobalNorm`)."""

    omega: float = 10.0
    p: float = 2.0

    def apply(self, state, x, dx, t):
        norm = float(np.sum(np.abs(dx) ** self.p) ** (1 / self.p))
        return (dx * (self.omega / norm) if norm > self.omega else dx), state


@dataclasses.dataclass
class WeightDecay(Optimiser):
    """Coupled L2 decay: ``dx + λ x`` (PyTorch's ``weight_decay`` of SGD/Adam)."""

    lam: float = 5e-4

    def apply(self, state, x, dx, t):
        return dx + x * self.lam, state


@dataclasses.dataclass
class ClipGlobalNorm(Optimiser):
    """Rescale all gradients together when their joint ``p``-norm exceeds
    ``omega`` (PyTorch's ``clip_grad_norm_``; `ClipNorm` clips each array on
    its own). In a chain it acts on the raw gradients, before every other rule."""

    omega: float = 1.0
    p: float = 2.0

    def rescale(self, grads: list) -> list:
        present = [g for g in grads if g is not None and not isinstance(g, Const)]
        if not present:
            return grads
        if np.isinf(self.p):
            norm = max(float(np.max(np.abs(g))) for g in present)
        else:
            norm = sum(float(np.sum(np.abs(g) ** self.p)) for g in present) ** (1 / self.p)
        if norm <= self.omega:
            return grads
        scale = self.omega / (norm + 1e-6)
        return [g if g is None or isinstance(g, Const) else g * np.asarray(scale, g.dtype)
                for g in grads]

    def apply(self, state, x, dx, t):
        return dx, state


class OptimiserChain(Optimiser):
    """Apply rules in order, each to the previous one's output."""

    def __init__(self, *rules: Optimiser) -> None:
        self.rules = rules

    def init_leaf(self, x):
        return tuple(r.init_leaf(x) for r in self.rules)

    def init_named(self, name, x):
        return tuple(r.init_named(name, x) for r in self.rules)

    def rescale(self, grads):
        for rule in self.rules:
            grads = rule.rescale(grads)
        return grads

    def apply(self, states, x, dx, t):
        new = []
        for rule, s in zip(self.rules, states):
            dx, s = rule.apply(s, x, dx, t)
            new.append(s)
        return dx, tuple(new)

    def __repr__(self) -> str:
        return f"OptimiserChain({', '.join(map(repr, self.rules))})"


class ParameterGroups(Optimiser):
    """Different rules for different parameters (PyTorch's parameter groups):
    ``group(name, array)`` names each parameter's group, and each group has its
    rule, e.g. no weight decay for biases and norms::

        nn.ParameterGroups(lambda name, p: "decay" if p.ndim > 1 else "plain",
                           decay=nn.AdamW(1e-3, weight_decay=0.01), plain=nn.Adam(1e-3))

    A group's state lives with its parameter, so the rules never mix."""

    def __init__(self, group: Callable[[str, Array], str], **rules: Optimiser) -> None:
        if not rules:
            raise ValueError("ParameterGroups needs at least one rule: group_name=Optimiser")
        self.group, self.rules = group, rules

    def init_named(self, name, x):
        label = self.group(name, x)
        if label not in self.rules:
            raise KeyError(f"ParameterGroups: parameter {name!r} is in group {label!r}, which "
                           f"has no rule (the rules are {sorted(self.rules)})")
        return label, self.rules[label].init_named(name, x)

    def rescale(self, grads):
        for rule in self.rules.values():
            grads = rule.rescale(grads)
        return grads

    def apply(self, state, x, dx, t):
        label, inner = state
        step, inner = self.rules[label].apply(inner, x, dx, t)
        return step, (label, inner)

    def __repr__(self) -> str:
        return f"ParameterGroups({', '.join(f'{k}={v!r}' for k, v in self.rules.items())})"
