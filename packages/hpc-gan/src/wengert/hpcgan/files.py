"""Atomic file writes: a crash or an interrupt never leaves a half-written file.

A write goes to a temporary file beside its destination, named
``.NAME.HOST.PID.TOKEN.tmp``, which is flushed, synced and renamed over the destination:
a reader sees the old file or the new one, never a mix.  A writer killed before the
rename (SIGKILL, power loss) cannot remove its temporary; the next write to the same
destination on the same host removes the temporaries whose writer process is gone.  The
host is in the name because a shared file system (NFS, Lustre) also shows the
temporaries of writers on other nodes, whose process ids mean nothing here.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _hostname() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _temporary_pattern(path: Path) -> re.Pattern:
    """Temporaries of ``path`` written on this host; group 1 is the writer's pid."""
    return re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_hostname())}\.(\d+)\.[0-9a-f]+\.tmp")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries of ``path`` left by writers that no longer run; returns them.

    Only files named as `write_atomically` names them on this host are touched, and only
    when the process id in the name is not a running process (a live writer keeps its file).
    """
    pattern, removed = _temporary_pattern(path), []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.fullmatch(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _process_exists(
            int(match.group(1))
        ):
            try:
                candidate.unlink()
            except FileNotFoundError:  # another writer cleaned it first
                continue
            removed.append(candidate)
    return removed


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    The new file gets the permissions a plain ``open(path, "wb")`` would give (the
    umask is honoured).  Concurrent writers each use their own temporary; the last
    rename wins, whole.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    temporary = path.with_name(
        f".{path.name}.{_hostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
