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


def explain_os_error(exc: OSError) -> str:
    """What a failed read or write means and what to do, naming the file."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    fixes = {
        errno.ENOSPC: "the disk is full; free some space or choose another folder",
        errno.EFBIG: "the file exceeds the size limit (ulimit -f); raise it or write less",
        errno.EDQUOT: "the disk quota is exhausted; free some space or choose another folder",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "operation not permitted; choose a folder you can write to",
        errno.EROFS: "the file system is read-only; choose another folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
        errno.EISDIR: "a folder is in the way; choose another path",
    }
    fix = fixes.get(exc.errno, "check the path and try again")
    return f"{where}{exc.strerror or exc}: {fix}"
