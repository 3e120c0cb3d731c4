"""Autograph: Python ``if``/``while``/``for`` on traced values, compiled.

`convert(f)` rewrites ``f``'s source (`transform`) so that each control-flow
statement calls `runtime`, which keeps running it as Python when its
condition is a plain value and turns it into `wengert.ad.cond` /
`wengert.ad.while_loop` when the condition is staged.
"""

from .conversion import convert
from .runtime import Undefined, set_loop_options

__all__ = ["Undefined", "convert", "set_loop_options"]
