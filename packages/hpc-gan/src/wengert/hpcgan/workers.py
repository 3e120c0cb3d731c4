"""Worker processes that do not outlive their parent.

A solver worker whose parent is killed (SIGKILL, the out-of-memory killer) would be
reparented and keep computing for nobody.  On Linux the kernel delivers SIGKILL to the
worker when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread
polls the parent's pid and ends the worker when it has changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def _kill_on_parent_death() -> None:
    """Linux only: ask the kernel to SIGKILL this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the polling thread still ends the worker


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(_POLL_SECONDS)


def exit_with_parent(parent: int) -> None:
    """Call first thing in a worker: it exits as soon as process ``parent`` is gone."""
    _kill_on_parent_death()
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="exit-with-parent", daemon=True).start()
