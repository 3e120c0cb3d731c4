"""wengert.xla: whole `wengert.ad` programs, forward and backward, compiled into
one XLA executable (the XLA.jl design, in Python, through jax as the XLA client).

``xla.jit(f)`` stages ``f`` with `wengert.ad.make_graph`, lowers every
equation with one rule per primitive (`wengert.xla.lowering.RULES`), compiles
once per input signature and runs on CPU, GPU or TPU. Staging ``ad.grad(f)``
puts the backward pass in the same executable. Python ``if``/``while``/``for``
on traced values compile too (autograph). See the package README.
"""

from . import errors, lowering
from .autograph import set_loop_options
from .captures import CapturedValueWarning
from .compile import Compiled, Jitted, LoopBoundWarning, Lowered, jit, lower
from .devices import resolve_device, to_cupy, to_numpy
from .errors import ConversionError, DeviceNotFoundError, LoweringError

__version__ = "0.1.0"

__all__ = ["CapturedValueWarning", "Compiled", "ConversionError", "DeviceNotFoundError",
           "Jitted", "LoopBoundWarning", "Lowered", "LoweringError", "errors", "jit", "lower",
           "lowering", "resolve_device", "set_loop_options", "to_cupy", "to_numpy"]
