"""The errors `wengert.xla` raises, so callers can catch them by kind."""


class DeviceNotFoundError(RuntimeError):
    """The requested device (``"gpu"``, ``"tpu"``, ...) is not present in this process."""


class LoweringError(NotImplementedError):
    """A graph equation has no XLA lowering (or its parameters cannot be lowered)."""


class ConversionError(SyntaxError):
    """Autograph could not rewrite a function's Python control flow."""
