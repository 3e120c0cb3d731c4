"""The public primitive registry of `wengert.ad`.

``registry`` maps each primitive's name to its `Primitive` (impl, shape rule,
JVP and VJP rules). `wengert.xla` lowers every entry; the test suite checks
every entry's derivatives numerically.
"""

from .._core import Aval, Primitive, Tracer, WeakAval, registry
from . import contraction, elementwise, reductions, structural  # noqa: F401  (registers)
from . import convolution  # noqa: F401  (registers conv_general_dilated, reduce_window_*)
from . import linalg  # noqa: F401  (registers cholesky, triangular_solve, solve, slogdet, eigh, svd)
from . import fft  # noqa: F401  (registers fft: fft/ifft/rfft/irfft)
from . import special  # noqa: F401  (registers erf, erfc, gammaln, digamma, polygamma, ...)
from . import dynamic  # noqa: F401  (registers dynamic_slice, dynamic_update_slice)
from . import control  # noqa: F401  (registers cond, while, scan)

__all__ = ["Aval", "Primitive", "Tracer", "WeakAval", "registry"]
