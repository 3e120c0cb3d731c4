"""Weights to and from PyTorch: ``nn.from_torch`` and ``nn.to_torch_state_dict``.

A PyTorch ``state_dict`` lists each module's tensors in registration order,
and a model ported to `wengert.nn` holds the same layers in the same order.
So the two are paired layer by layer, in order: every layer of ours that
owns arrays (Dense, Conv, a norm, a recurrent cell, attention, ...) takes
the next PyTorch module's tensors, converted between the two layouts:

* Dense: ``Linear.weight`` ``(out, in)`` is transposed;
* Conv: ``(out, in/groups, K...)`` becomes ``(K..., in/groups, out)``;
  ConvTranspose: ``(in, out/groups, K...)`` becomes ``(K..., out/groups, in)``;
* the first Dense after a Flatten of convolution features: PyTorch flattens
  ``(C, H, W)``, we flatten ``(H, W, C)``, so its input rows are permuted;
* BatchNorm: ``weight, bias, running_mean, running_var`` (``num_batches_tracked``
  is not used); LayerNorm/GroupNorm/InstanceNorm: ``weight, bias``;
* RNN/LSTM/GRU (``nn.LSTM`` with ``num_layers`` or ``nn.LSTMCell``): the
  ``_ih``/``_hh`` matrices transposed; RNN and LSTM keep one bias, the sum of
  PyTorch's two (the same function), or both with ``hidden_bias=True``; GRU
  keeps both;
* MultiHeadAttention: ``in_proj_weight`` split into q, k, v, and ``out_proj``.

Nothing here imports torch: a module is read through ``state_dict()``, and
tensors are made with an existing tensor's ``new_tensor``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Buffer, Layer, _fields
from .layers import (
    BatchNorm,
    Bilinear,
    Conv,
    ConvTranspose,
    Dense,
    Embedding,
    Flatten,
    GroupNorm,
    LayerNorm,
    MultiHeadAttention,
)
from .layers.recurrent import GRUCell, LSTMCell, RNNCell

__all__ = ["from_torch", "to_torch_state_dict"]

Arrays = dict[str, np.ndarray]


@dataclass
class _Context:
    """What a Dense needs to know about its input: the channel count of the
    convolution features a Flatten just flattened, or None."""

    flattened_channels: int | None = None


# ---- one converter per kind of layer ----------------------------------------------------------

def _linear_rows(w_in_out: np.ndarray, channels: int | None, to_torch: bool) -> np.ndarray:
    """Reorder a Dense weight's input rows between NHWC and NCHW flattening."""
    if channels is None or channels <= 1 or w_in_out.shape[0] == channels:
        return w_in_out
    n_in, n_out = w_in_out.shape
    positions = n_in // channels
    if to_torch:  # ours (P, C) -> theirs (C, P)
        return w_in_out.reshape(positions, channels, n_out).transpose(1, 0, 2).reshape(n_in, n_out)
    return w_in_out.reshape(channels, positions, n_out).transpose(1, 0, 2).reshape(n_in, n_out)


def _dense_in(t: Arrays, layer: Dense, ctx: _Context) -> dict:
    w = _linear_rows(t["weight"].T, ctx.flattened_channels, to_torch=False)
    return {"weight": w, "bias": t.get("bias")}


def _dense_out(layer: Dense, ctx: _Context) -> Arrays:
    w = _linear_rows(np.asarray(layer.weight), ctx.flattened_channels, to_torch=True)
    return _without_none({"weight": w.T, "bias": layer.bias})


def _kernel_in(t: Arrays, layer: Layer, ctx: _Context) -> dict:
    return {"weight": np.moveaxis(t["weight"], (0, 1), (-1, -2)), "bias": t.get("bias")}


def _kernel_out(layer: Layer, ctx: _Context) -> Arrays:
    return _without_none({"weight": np.moveaxis(np.asarray(layer.weight), (-1, -2), (0, 1)),
                          "bias": layer.bias})


def _norm_in(t: Arrays, layer: Layer, ctx: _Context) -> dict:
    fields = {"γ": t.get("weight"), "β": t.get("bias")}
    if "running_mean" in t:
        fields["mean"], fields["var"] = Buffer(t["running_mean"]), Buffer(t["running_var"])
    return fields


def _norm_out(layer: Layer, ctx: _Context) -> Arrays:
    out = {"weight": layer.γ, "bias": layer.β}
    if getattr(layer, "mean", None) is not None:
        out["running_mean"], out["running_var"] = layer.mean.value, layer.var.value
    return _without_none(out)


def _same_in(t: Arrays, layer: Layer, ctx: _Context) -> dict:
    return {"weight": t["weight"], "bias": t.get("bias")} if "bias" in _fields(
        type(layer))[0] else {"weight": t["weight"]}


def _same_out(layer: Layer, ctx: _Context) -> Arrays:
    return _without_none({"weight": layer.weight, "bias": getattr(layer, "bias", None)})


def _cell_in(t: Arrays, layer: Layer, ctx: _Context) -> dict:
    fields = {"Wi": t["weight_ih"].T, "Wh": t["weight_hh"].T}
    b_ih = t.get("bias_ih", np.zeros(t["weight_ih"].shape[0], t["weight_ih"].dtype))
    b_hh = t.get("bias_hh", np.zeros_like(b_ih))
    if layer.bh is not None:  # GRU, or hidden_bias=True: both, as PyTorch
        fields["b"], fields["bh"] = b_ih, b_hh
    else:  # one bias: the same function as PyTorch's two
        fields["b"] = b_ih + b_hh
    return fields


def _cell_out(layer: Layer, ctx: _Context) -> Arrays:
    b = np.asarray(layer.b)
    return {"weight_ih": np.asarray(layer.Wi).T, "weight_hh": np.asarray(layer.Wh).T,
            "bias_ih": b, "bias_hh": np.zeros_like(b) if layer.bh is None else
            np.asarray(layer.bh)}


def _attention_in(t: Arrays, layer: MultiHeadAttention, ctx: _Context) -> dict:
    if "in_proj_weight" not in t:
        raise ValueError("from_torch: MultiheadAttention with separate q/k/v projections "
                         "(kdim or vdim != embed_dim) has no counterpart here")
    wq, wk, wv = np.split(t["in_proj_weight"], 3)
    fields = {"Wq": wq.T, "Wk": wk.T, "Wv": wv.T, "Wo": t["out_proj.weight"].T}
    if "in_proj_bias" in t:
        fields["bq"], fields["bk"], fields["bv"] = np.split(t["in_proj_bias"], 3)
        fields["bo"] = t["out_proj.bias"]
    return fields


def _attention_out(layer: MultiHeadAttention, ctx: _Context) -> Arrays:
    a = np.asarray
    out = {"in_proj_weight": np.concatenate([a(layer.Wq).T, a(layer.Wk).T, a(layer.Wv).T])}
    if layer.bq is not None:
        out["in_proj_bias"] = np.concatenate([a(layer.bq), a(layer.bk), a(layer.bv)])
    out["out_proj.weight"] = a(layer.Wo).T
    if layer.bo is not None:
        out["out_proj.bias"] = layer.bo
    return out


@dataclass(frozen=True)
class _Converter:
    to_ours: Callable[[Arrays, Any, _Context], dict]
    to_torch: Callable[[Any, _Context], Arrays]


_CONVERTERS: dict[type, _Converter] = {
    Dense: _Converter(_dense_in, _dense_out),
    Conv: _Converter(_kernel_in, _kernel_out),
    ConvTranspose: _Converter(_kernel_in, _kernel_out),
    BatchNorm: _Converter(_norm_in, _norm_out),
    LayerNorm: _Converter(_norm_in, _norm_out),
    GroupNorm: _Converter(_norm_in, _norm_out),
    Embedding: _Converter(_same_in, _same_out),
    Bilinear: _Converter(_same_in, _same_out),
    RNNCell: _Converter(_cell_in, _cell_out),
    LSTMCell: _Converter(_cell_in, _cell_out),
    GRUCell: _Converter(_cell_in, _cell_out),
    MultiHeadAttention: _Converter(_attention_in, _attention_out),
}


def _converter(layer: Layer) -> _Converter | None:
    for cls in type(layer).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None


def _without_none(d: dict) -> Arrays:
    return {k: np.asarray(v) for k, v in d.items() if v is not None}


# ---- walking both sides in order -----------------------------------------------------------

def _our_layers(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, layer)`` for every layer with a converter, and ``(path, Flatten)``
    markers, in the order the model holds them (a named Chain's insertion order,
    which is its call order and PyTorch's registration order)."""
    join = (lambda k: f"{path}.{k}") if path else str
    if isinstance(tree, Layer):
        if _converter(tree) is not None or isinstance(tree, Flatten):
            yield path, tree
            return
        for name in _fields(type(tree))[0]:
            yield from _our_layers(getattr(tree, name), join(name))
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _our_layers(v, join(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _our_layers(v, join(i))


def _with_context(model: Any) -> Iterator[tuple[str, Layer, _Context]]:
    """Our layers with what each Dense must know about a preceding Flatten."""
    channels = None  # channels of the latest convolution features, if the data is an image
    pending: int | None = None
    for path, layer in _our_layers(model):
        if isinstance(layer, Flatten):
            pending = channels
            continue
        ctx = _Context(pending if isinstance(layer, Dense) else None)
        pending = None
        if isinstance(layer, Conv):
            channels = layer.weight.shape[-1]
        elif isinstance(layer, ConvTranspose):
            channels = layer.weight.shape[-2] * layer.groups
        elif not isinstance(layer, (BatchNorm, GroupNorm)):
            channels = None  # Dense, recurrent, attention: already flat (N, ..., features)
        yield path, layer, ctx


_LAYER_SUFFIX = re.compile(r"^(.*)_l(\d+)$")


def _torch_groups(state: dict) -> list[tuple[str, dict[str, str]]]:
    """A state dict's keys grouped by module, in order, as ``(module, {tensor
    name: key})``; a multi-layer RNN is one group per layer, and
    MultiheadAttention's ``out_proj`` joins its module."""
    groups: dict[str, dict[str, str]] = {}
    for key in state:
        module, _, name = key.rpartition(".")
        if name == "num_batches_tracked":
            continue
        match = _LAYER_SUFFIX.match(name)
        if match and name.startswith(("weight_", "bias_")):
            if name.endswith("_reverse"):
                raise ValueError(f"{key}: bidirectional RNNs have no counterpart here")
            name, module = match.group(1), f"{module}#l{match.group(2)}"
        parent, _, last = module.rpartition(".")
        if last == "out_proj" and "in_proj_weight" in groups.get(parent, {}):
            module, name = parent, f"out_proj.{name}"
        groups.setdefault(module, {})[name] = key
    return list(groups.items())


def _state_dict(source: Any) -> dict:
    return source.state_dict() if hasattr(source, "state_dict") else dict(source)


def _numpy(t: Any) -> np.ndarray:
    if isinstance(t, np.ndarray):
        return t
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _owns_arrays(layer: Layer) -> bool:
    values = (getattr(layer, n) for n in _fields(type(layer))[0])
    return any(v is not None and not isinstance(v, Layer) for v in values)


def _pairs(model: Any, state: dict, where: str) -> list[tuple]:
    """``(path, layer, context, module, {name: key})`` for each layer paired
    with its PyTorch module."""
    ours = [item for item in _with_context(model) if _owns_arrays(item[1])]
    theirs = _torch_groups(state)
    if len(ours) != len(theirs):
        raise ValueError(
            f"{where}: the model has {len(ours)} layers with weights "
            f"({', '.join(type(l).__name__ for _, l, _ in ours)}) but the PyTorch state has "
            f"{len(theirs)} modules ({', '.join(m for m, _ in theirs)}); they are paired in "
            "order, so both must hold the same layers in the same order")
    return [(p, layer, ctx, module, keys)
            for (p, layer, ctx), (module, keys) in zip(ours, theirs)]


def _converter_of(layer: Layer) -> _Converter:
    conv = _converter(layer)
    if conv is None:  # pragma: no cover - _our_layers yields only layers with converters
        raise TypeError(f"no PyTorch converter for {type(layer).__name__}")
    return conv


def _name(path: str, layer: Layer) -> str:
    return path or type(layer).__name__


# ---- public -------------------------------------------------------------------------------

def _storage(t: Any) -> tuple | None:
    """What makes two state entries one tensor: its memory, shape, strides, dtype."""
    if hasattr(t, "data_ptr") and t.numel():
        return ("torch", t.data_ptr(), tuple(t.shape), tuple(t.stride()), str(t.dtype))
    if isinstance(t, np.ndarray) and t.size:
        return ("numpy", t.__array_interface__["data"][0], t.shape, t.strides, t.dtype.str)
    return None


def _tied_keys(state: dict) -> dict[str, str]:
    """Each key whose tensor is an earlier key's tensor -> that key. PyTorch ties
    weights by giving two modules one Parameter; its state dict lists it twice."""
    first: dict[tuple, str] = {}
    tied = {}
    for key, t in state.items():
        storage = _storage(t)
        if storage is not None:
            tied_to = first.setdefault(storage, key)
            if tied_to != key:
                tied[key] = tied_to
    return tied


def _tie(made: dict, tied: dict, key: str, where: str, array: np.ndarray) -> np.ndarray:
    """The array for a field read from PyTorch's ``key``: the array already made
    for the key it is tied to, so the tie survives (one parameter, one update);
    a `ValueError` when the two layouts differ and one array cannot serve both."""
    if key not in tied:
        made[key] = (where, array)
        return array
    first_where, first = made.get(tied[key], (None, None))
    if first is None or first.shape != array.shape or first.dtype != array.dtype:
        shape = "" if first is None else f" {tuple(first.shape)} against {tuple(array.shape)}"
        raise ValueError(
            f"from_torch: PyTorch ties {key!r} to {tied[key]!r} (one Parameter in two "
            f"modules), but {where} and {first_where or 'its counterpart'} cannot hold one "
            f"array here{shape}; tie them as wengert.nn does: the same array in both layers, "
            "or Embedding.attend(h) for an output layer that reuses the embedding (then "
            "convert the state dict without that module's tensors and copy its bias "
            "yourself)")
    return first


def from_torch(source: Any, like: Any) -> Any:
    """A copy of ``like`` holding the weights of a PyTorch module or ``state_dict``
    (paired with ``like``'s layers in order); dtypes follow ``like``. A shape
    that does not fit raises a `ValueError` naming both sides. Weights PyTorch
    ties (one Parameter in two modules) stay one array here, or a `ValueError`
    says why they cannot."""
    state = _state_dict(source)
    tied, made = _tied_keys(state), {}
    replacements: dict[int, Layer] = {}
    for path, layer, ctx, module, keys in _pairs(like, state, "from_torch"):
        arrays = {name: _numpy(state[key]) for name, key in keys.items()}
        changes = {}
        for field, value in _converter_of(layer).to_ours(arrays, layer, ctx).items():
            old = getattr(layer, field)
            old_array = old.value if isinstance(old, Buffer) else old
            new_array = value.value if isinstance(value, Buffer) else value
            if (old_array is None) != (new_array is None):
                raise ValueError(
                    f"from_torch: {_name(path, layer)}.{field} is "
                    f"{'absent' if old_array is None else 'present'} here but "
                    f"{'present' if old_array is None else 'absent'} in PyTorch's {module!r} "
                    "(bias=, affine= or track_stats= differ)")
            if old_array is None:
                continue
            if tuple(old_array.shape) != tuple(new_array.shape):
                raise ValueError(f"from_torch: {_name(path, layer)}.{field} has shape "
                                 f"{tuple(old_array.shape)} but PyTorch's {module!r} gives "
                                 f"{tuple(new_array.shape)}")
            # always a copy: a view would follow PyTorch's in-place updates (its
            # optimiser steps) into this model
            new_array = np.array(new_array, dtype=old_array.dtype, order="C", copy=True)
            if field in keys:  # read from one tensor of the same name: ties apply
                new_array = _tie(made, tied, keys[field], f"{_name(path, layer)}.{field}",
                                 new_array)
            elif any(key in tied or key in tied.values() for key in keys.values()):
                raise ValueError(f"from_torch: {module!r} holds a tied tensor that "
                                 f"{type(layer).__name__} converts with others; only whole "
                                 "tensors (weights of Dense, Conv, Embedding) can stay tied")
            changes[field] = Buffer(new_array) if isinstance(old, Buffer) else new_array
        replacements[id(layer)] = layer.replace(**changes)
    return _rebuild(like, replacements)


def _rebuild(tree: Any, replacements: dict[int, Layer]) -> Any:
    if isinstance(tree, Layer):
        if id(tree) in replacements:
            return replacements[id(tree)]
        names = _fields(type(tree))[0]
        return tree.replace(**{n: _rebuild(getattr(tree, n), replacements) for n in names})
    if isinstance(tree, dict):
        return {k: _rebuild(v, replacements) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_rebuild(v, replacements) for v in tree)
    return tree


def to_torch_state_dict(model: Any, like: Any = None) -> dict[str, Any]:
    """``model``'s weights in PyTorch's layouts. With ``like`` (a PyTorch module
    or its ``state_dict``) the keys are its keys, paired in order, and the values
    tensors made like its own, ready for ``module.load_state_dict``; without it
    the keys are our layer paths with PyTorch's tensor names, values NumPy arrays."""
    if like is None:
        out: dict[str, Any] = {}
        for path, layer, ctx in _with_context(model):
            recurrent = isinstance(layer, (RNNCell, LSTMCell, GRUCell))
            for name, value in _converter_of(layer).to_torch(layer, ctx).items():
                name = f"{name}_l0" if recurrent else name
                out[f"{path}.{name}" if path else name] = value
        return out
    state = _state_dict(like)
    out = {}
    for path, layer, ctx, module, keys in _pairs(model, state, "to_torch_state_dict"):
        arrays = _converter_of(layer).to_torch(layer, ctx)
        for name, key in keys.items():
            if name not in arrays:
                raise ValueError(f"to_torch_state_dict: PyTorch's {key!r} has no counterpart "
                                 f"in {_name(path, layer)} (bias=, affine= or track_stats= "
                                 "differ)")
            ref, value = state[key], np.ascontiguousarray(arrays[name])
            if tuple(value.shape) != tuple(ref.shape):
                raise ValueError(f"to_torch_state_dict: {key!r} has shape {tuple(ref.shape)} "
                                 f"but {_name(path, layer)} gives {value.shape}")
            out[key] = ref.new_tensor(value) if hasattr(ref, "new_tensor") else value
    # what PyTorch keeps and we do not (BatchNorm's num_batches_tracked) is passed through
    return {key: out.get(key, ref) for key, ref in state.items()}
