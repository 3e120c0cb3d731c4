"""The errors `wengert.ad` raises, so callers can catch them by kind."""


class TracerArrayConversionError(TypeError):
    """A traced value was turned into a plain NumPy array (its derivative would be lost)."""


class TracerMutationError(TypeError):
    """An in-place update that cannot be expressed on the traced handle."""


class ConcretizationError(TypeError):
    """Python control flow asked for the value of a staged (abstract) tracer."""


class NonDifferentiableError(TypeError):
    """A function with no differentiation rule was applied to a traced value."""


class EscapedTracerError(TypeError):
    """A traced value was used after the transformation that made it had returned."""


class DerivativeDroppedError(TypeError):
    """A differentiable traced value was converted to a Python number (its derivative
    would silently be lost)."""
