"""wengert.ad: differentiate ordinary Python/NumPy programs.

Reverse mode (`gradient`, `pullback`), forward mode (`jvp`), their
compositions to any depth, custom rules (`adjoint`), containers as trees, and
a NumPy-compatible namespace (`wengert.ad.numpy`). See shared/DESIGN.md.
"""

from . import errors, ir, primitives
from . import numpy  # noqa: F401  (installs the array interface of tracers)
from ._staging import eval_graph, make_graph
from ._api import (adjoint, elementwise_grad, grad, gradient, is_differentiable, jvp, pullback,
                   stop_gradient, value_and_grad)
from . import batching_rules  # noqa: F401  (fills batching.rules)
from . import random  # noqa: F401  (registers the generator's primitives)
from .batching import vmap
from .checkpoint import checkpoint
from .control import cond, fori_loop, scan, while_loop, while_loop_bound
from .custom import custom_jvp
from .device import to_device
from .jacobians import hessian, hvp, jacfwd, jacobian, jacrev
from .tree import register_tree, tree_flatten, tree_leaves, tree_map, tree_unflatten

__version__ = "0.1.0"

__all__ = [
    "adjoint", "checkpoint", "cond", "custom_jvp", "elementwise_grad", "errors", "eval_graph",
    "fori_loop",
    "grad", "gradient", "hessian", "hvp", "ir", "is_differentiable", "jacfwd", "jacobian",
    "jacrev", "jvp", "make_graph", "primitives", "pullback", "random", "register_tree", "scan",
    "stop_gradient", "to_device", "tree_flatten", "tree_leaves", "tree_map",
    "tree_unflatten", "value_and_grad", "vmap", "while_loop", "while_loop_bound",
]
