"""Counter-based, splittable random numbers (JAX's ``jax.random``, threefry keys).

A key is a ``uint32`` array of shape ``(2,)``; every draw is a pure function
of the key, so a program that takes keys as arguments is reproducible,
differentiable and compilable: ``wengert.xla`` lowers the generator into the
executable, where it produces the same numbers as the eager NumPy/CuPy
implementation for the same key (bit for bit for ``bits``, ``uniform``,
``bernoulli``, ``permutation`` and ``split``; to a few ulps for ``normal``,
whose inverse error function differs between libraries). The numbers are
those of ``jax.random`` with its default threefry implementation.

The generator is Threefry-2x32 (Salmon et al., SC 2011: 20 rounds of
add-rotate-xor on two 32-bit words under a 64-bit key) applied to counters
0, 1, 2, ... Its primitives, registered in `wengert.ad.primitives.registry`:

* ``threefry2x32(k1, k2, x1, x2) -> (y1, y2)``: the block cipher, elementwise
  in the counter words ``x1``/``x2`` (``uint32``, any shape, keys broadcast).
* ``random_counters(key, shape)`` -> ``(hi, lo)``: the 64-bit counters of the
  positions of ``shape``, as two ``uint32`` arrays (takes the key only so that
  it is computed where the key lives, and staged with it).
* ``random_combine(y1, y2, bit_width)``: the bits of a draw from the cipher's
  two words (``y1 ^ y2`` for 8/16/32 bits; ``y1 << 32 | y2`` for 64).
* ``random_unit(bits, dtype)``: floats in ``[0, 1)`` with the bits as mantissa.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._core import Aval, Primitive, Tracer
from .batching import rules as batching_rules
from .primitives._helpers import on_device_of, shape_of

_U32 = np.dtype(np.uint32)
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA  # Threefry's key-schedule constant
_UINT = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.uint32),
         64: np.dtype(np.uint64)}


def _xp(*xs: Any) -> Any:
    for x in xs:
        if type(x).__module__.split(".")[0] == "cupy":
            import cupy

            return cupy
    return np


# ---- the cipher ---------------------------------------------------------------------------------
def threefry_rounds(k1: Any, k2: Any, x1: Any, x2: Any, ops: Any) -> tuple[Any, Any]:
    """Threefry-2x32, 20 rounds, with the integer operations of ``ops`` (``add``, ``xor``,
    ``rotl``): shared by the NumPy implementation and `wengert.xla`'s lowering."""
    ks = (k1, k2, ops.xor(ops.xor(k1, k2), _PARITY))
    x = [ops.add(x1, ks[0]), ops.add(x2, ks[1])]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x[0] = ops.add(x[0], x[1])
            x[1] = ops.xor(ops.rotl(x[1], r), x[0])
        x[0] = ops.add(x[0], ks[(block + 1) % 3])
        x[1] = ops.add(ops.add(x[1], ks[(block + 2) % 3]), block + 1)
    return x[0], x[1]


class _ArrayOps:
    """uint32 arithmetic on NumPy/CuPy arrays (wrapping, as the cipher needs)."""

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        with np.errstate(over="ignore"):
            return (a + _u32(b, a)).astype(_U32)

    @staticmethod
    def xor(a: Any, b: Any) -> Any:
        return (a ^ _u32(b, a)).astype(_U32)

    @staticmethod
    def rotl(x: Any, r: int) -> Any:
        return ((x << np.uint32(r)) | (x >> np.uint32(32 - r))).astype(_U32)


def _u32(v: Any, like: Any) -> Any:
    return _U32.type(v) if isinstance(v, int) else v


def _threefry_impl(k1, k2, x1, x2):
    xp = _xp(k1, k2, x1, x2)
    k1, k2, x1, x2 = (xp.asarray(v, _U32) for v in (k1, k2, x1, x2))
    shape = np.broadcast_shapes(k1.shape, k2.shape, x1.shape, x2.shape)
    k1, k2, x1, x2 = (xp.broadcast_to(v, shape) for v in (k1, k2, x1, x2))
    return threefry_rounds(k1, k2, x1, x2, _ArrayOps)


def _threefry_shape(k1, k2, x1, x2):
    shape = np.broadcast_shapes(*(shape_of(v) for v in (k1, k2, x1, x2)))
    return Aval(shape, _U32), Aval(shape, _U32)


threefry2x32_p = Primitive("threefry2x32", _threefry_impl, multiple_results=True)
threefry2x32_p.def_rules(shape=_threefry_shape)


def _counters_impl(key, shape):
    xp = _xp(key)
    size = int(np.prod(shape, dtype=np.int64))
    flat = xp.arange(size, dtype=np.uint64)
    hi = (flat >> np.uint64(32)).astype(_U32).reshape(shape)
    return hi, (flat & np.uint64(0xFFFFFFFF)).astype(_U32).reshape(shape)


random_counters_p = Primitive("random_counters", _counters_impl, multiple_results=True)
random_counters_p.def_rules(shape=lambda key, shape: (Aval(tuple(shape), _U32),) * 2)


def _combine_impl(y1, y2, bit_width):
    if bit_width == 64:
        return (y1.astype(np.uint64) << np.uint64(32)) | y2.astype(np.uint64)
    return (y1 ^ y2).astype(_UINT[bit_width])


random_combine_p = Primitive("random_combine", _combine_impl)
random_combine_p.def_rules(shape=lambda y1, y2, bit_width: Aval(
    np.broadcast_shapes(y1.shape, y2.shape), _UINT[bit_width]))


def _unit_impl(bits, dtype):
    """The top mantissa bits under the exponent of 1.0 give a float in [1, 2); minus 1."""
    dtype = np.dtype(dtype)
    finfo = np.finfo(dtype)
    uint = _UINT[finfo.bits]
    shift = uint.type(bits.dtype.itemsize * 8 - finfo.nmant)  # of the bits drawn
    bits = bits.astype(uint)
    one = np.array(1.0, dtype).view(uint)
    return ((bits >> shift) | one).view(dtype) - dtype.type(1.0)


random_unit_p = Primitive("random_unit", _unit_impl)
random_unit_p.def_rules(shape=lambda bits, dtype: Aval(bits.shape, dtype))


def _batch_counters(vals, batched, size, *, shape):
    # The counters do not depend on the key's value: one set serves every example.
    key = vals[0][0] if batched[0] else vals[0]
    return random_counters_p.bind(key, shape=shape), [False, False]


def _install_batching() -> None:
    from .batching_rules import elementwise

    batching_rules["threefry2x32"] = elementwise(threefry2x32_p)
    batching_rules["random_combine"] = elementwise(random_combine_p)
    batching_rules["random_unit"] = elementwise(random_unit_p)
    batching_rules["random_counters"] = _batch_counters


_install_batching()


# ---- keys ----------------------------------------------------------------------------------------
def _check_key(key: Any, what: str) -> None:
    shape = tuple(key.shape) if hasattr(key, "shape") else np.shape(key)
    dtype = np.dtype(key.dtype) if hasattr(key, "dtype") else None
    if shape[-1:] != (2,) or dtype != _U32:
        raise TypeError(f"random.{what}: expected a key (uint32 array of shape (2,), from "
                        f"wengert.ad.random.key(seed)), got {dtype} {shape}")


def key(seed: int | Any) -> Any:
    """The key of an integer seed: its 64 bits as two ``uint32`` words (JAX's rule)."""
    if isinstance(seed, Tracer):
        from .numpy import stack

        if np.dtype(seed.dtype).kind not in "iu" or np.dtype(seed.dtype).itemsize > 4:
            raise TypeError("random.key: a traced seed must be an integer of at most 32 bits")
        low = seed.astype(np.uint32)
        return stack([low * np.uint32(0), low])
    seed = int(seed) % (1 << 64)
    return np.array([seed >> 32, seed & 0xFFFFFFFF], _U32)


def _words(key: Any) -> tuple[Any, Any]:
    return key[..., 0], key[..., 1]


def _cipher(key: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    k1, k2 = _words(key)
    hi, lo = random_counters_p.bind(key, shape=tuple(int(d) for d in shape))
    return threefry2x32_p.bind(k1, k2, hi, lo)


def split(key: Any, num: int = 2) -> Any:
    """``num`` new independent keys, shape ``(num, 2)``."""
    _check_key(key, "split")
    from .numpy import stack

    y1, y2 = _cipher(key, (int(num),))
    return stack([y1, y2], axis=-1)


def fold_in(key: Any, data: int | Any) -> Any:
    """A new key from ``key`` and an integer (a step counter, a device index)."""
    _check_key(key, "fold_in")
    from .numpy import stack

    k1, k2 = _words(key)
    d = data.astype(np.uint32) if isinstance(data, Tracer) else \
        np.uint32(int(data) % (1 << 32))
    y1, y2 = threefry2x32_p.bind(k1, k2, on_device_of(key, np.uint32(0)), d)
    return stack([y1, y2])


def bits(key: Any, shape: Sequence[int] = (), dtype: Any = np.uint32) -> Any:
    """Uniformly random unsigned integers of ``dtype`` (8 to 64 bits)."""
    _check_key(key, "bits")
    width = np.dtype(dtype).itemsize * 8
    if np.dtype(dtype).kind != "u" or width not in _UINT:
        raise TypeError(f"random.bits: dtype must be an unsigned integer type, got {dtype}")
    y1, y2 = _cipher(key, tuple(shape))
    return random_combine_p.bind(y1, y2, bit_width=width)


def uniform(key: Any, shape: Sequence[int] = (), dtype: Any = np.float64, minval: Any = 0.0,
            maxval: Any = 1.0) -> Any:
    """Floats uniform in ``[minval, maxval)`` (differentiable in ``minval``/``maxval``)."""
    _check_key(key, "uniform")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"random.uniform: dtype must be a float type, got {dtype}")
    width = max(dtype.itemsize * 8, 8 if np.finfo(dtype).nmant < 8 else 0)
    y1, y2 = _cipher(key, tuple(shape))
    unit = random_unit_p.bind(random_combine_p.bind(y1, y2, bit_width=width), dtype=dtype)
    from .numpy import asarray, maximum

    lo, hi = asarray(minval).astype(dtype), asarray(maxval).astype(dtype)
    return maximum(lo, unit * (hi - lo) + lo)


def normal(key: Any, shape: Sequence[int] = (), dtype: Any = np.float64) -> Any:
    """Standard normal floats: ``sqrt(2) erfinv(u)`` for ``u`` uniform in ``(-1, 1)``."""
    from .primitives.special import erfinv_p

    dtype = np.dtype(dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = uniform(key, shape, dtype, lo, 1.0)
    return erfinv_p.bind(u) * dtype.type(np.sqrt(2))


def bernoulli(key: Any, p: Any = 0.5, shape: Sequence[int] | None = None) -> Any:
    """Booleans that are True with probability ``p`` (broadcast to ``shape``)."""
    p_dtype = np.dtype(p.dtype) if hasattr(p, "dtype") else np.dtype(np.float64)
    shape = tuple(shape_of(p)) if shape is None else tuple(shape)
    return uniform(key, shape, p_dtype) < p


def permutation(key: Any, x: int | Any, axis: int = 0) -> Any:
    """A random permutation of ``range(x)``, or of ``x``'s entries along ``axis``.

    Sorts by fresh random 32-bit keys, repeated often enough that ties are
    improbable (JAX's algorithm, so JAX's permutations)."""
    _check_key(key, "permutation")
    from .numpy import arange, argsort, take

    n = int(x) if not hasattr(x, "shape") or not tuple(x.shape) else int(x.shape[axis])
    order = None  # arange(n), reordered by each round's sort
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        keys = split(key)
        key, sub = keys[0], keys[1]
        step = argsort(bits(sub, (n,)), kind="stable")
        order = step if order is None else take(order, step)
    if order is None:
        order = arange(n)
    if not hasattr(x, "shape") or not tuple(x.shape):
        return order
    return take(x, order, axis=axis)


__all__ = ["bernoulli", "bits", "fold_in", "key", "normal", "permutation", "split",
           "uniform"]
