"""Exceptions of wengert.hpcgan.

Every error that bad input can cause derives from :class:`HpcganError`, so the
command line can print its message (what, where, what to do) without a traceback.
"""


class HpcganError(Exception):
    """Base class of the errors that the user can fix."""


class PresetError(HpcganError, ValueError):
    """A preset (site geometry, wells, kernels, sizes) is malformed or inconsistent."""


class DatasetError(HpcganError):
    """A Monte Carlo dataset folder is missing, incomplete or belongs to another preset."""


class SimulationError(HpcganError):
    """A Monte Carlo run failed part-way; no dataset was written."""


class TrainingError(HpcganError):
    """A PI-GAN run cannot start, resume or continue; the message says why and what to do."""


class TrainingDiverged(TrainingError):
    """A loss or gradient became non-finite or exceeded the divergence limit."""


class TrainingInterrupted(TrainingError):
    """Ctrl-C during training: the last whole iteration was checkpointed before stopping."""
