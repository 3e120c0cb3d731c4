"""No rank waits forever: every wait on a collective polls its request against a deadline.

A rank whose wait times out, or whose request fails because a peer's process died, pings
every other rank on a private communicator; ranks that are themselves waiting answer
pings while they poll.  The ranks that give no answer within ``grace`` seconds are named
in the message, and the whole job is aborted (non-zero exit) instead of hanging.  A rank
busy computing longer than ``timeout + grace`` would be named too: set ``timeout`` well
above one step's time.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .mpi import mpi

#: Seconds between naming the silent ranks and aborting, for the message to reach the
#: launcher.
ABORT_GRACE = 1.0

_PING, _PONG = 7301, 7302
ABORT_CODE = 3


class Watchdog:
    """Deadline-bounded waits on requests of ``comm`` (or of communicators derived from it)."""

    def __init__(self, comm: Any, timeout: float = 300.0, grace: float = 5.0) -> None:
        self.comm = comm
        self.heartbeat = comm.Dup()
        self.timeout, self.grace = float(timeout), float(grace)
        self.context = "start-up"  # what the job is doing (the loop sets the iteration)
        self._token = np.zeros(1, np.int8)
        self._sends: list = []

    def waitall(self, requests: Sequence[Any], what: str) -> None:
        """Complete ``requests`` or abort the job naming the unresponsive ranks."""
        MPI = mpi()
        pending = [r for r in requests if r is not None]
        if pending:
            self.wait_until(lambda: MPI.Request.Testall(pending), what)

    def wait_until(self, done: Callable[[], bool], what: str) -> None:
        """Poll ``done()`` (an MPI request test, a CUDA event) until it is true, answering
        the other ranks' pings meanwhile; abort the job naming the unresponsive ranks
        when it stays false past the timeout or raises an MPI error."""
        MPI = mpi()
        start, pause = time.monotonic(), 0.0
        try:
            while not done():
                self._answer_pings()
                if time.monotonic() - start > self.timeout:
                    self.abort(what, f"did not complete within {self.timeout:g} s")
                time.sleep(pause)
                pause = min(1e-3, pause + 5e-5)  # back off: waiting ranks leave the CPU to peers
        except MPI.Exception as exc:
            self.abort(what, f"failed ({exc.Get_error_string().strip()})")

    def barrier(self, what: str) -> None:
        self.waitall([self.comm.Ibarrier()], what)

    def gather(self, obj: Any, what: str, root: int = 0) -> list[Any] | None:
        """``comm.gather(obj, root)`` with every wait under the deadline: the objects are
        pickled and travel as bytes (``Igather`` of the lengths, then ``Igatherv``), since
        mpi4py's object gather has no non-blocking form.  ``root`` gets the list in rank
        order, the other ranks ``None``."""
        MPI = mpi()
        payload = np.frombuffer(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL), np.uint8)
        is_root = self.comm.Get_rank() == root
        lengths = np.zeros(self.comm.Get_size() if is_root else 0, np.int64)
        self.waitall([self.comm.Igather(np.array([payload.size], np.int64),
                                        lengths if is_root else None, root)], what)
        received = np.empty(int(lengths.sum()), np.uint8) if is_root else None
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if is_root else None
        self.waitall([self.comm.Igatherv(
            payload, [received, lengths, offsets, MPI.BYTE] if is_root else None, root)], what)
        if not is_root:
            return None
        return [pickle.loads(received[o:o + n].tobytes()) for o, n in zip(offsets, lengths)]

    def _answer_pings(self) -> None:
        MPI = mpi()
        status = MPI.Status()
        while self.heartbeat.Iprobe(MPI.ANY_SOURCE, _PING, status):
            source = status.Get_source()
            self.heartbeat.Recv(np.empty(1, np.int8), source, _PING)
            self._sends.append(self.heartbeat.Isend(self._token, source, _PONG))

    def silent_ranks(self) -> list[int]:
        """The ranks that do not answer a ping within ``grace`` seconds."""
        MPI = mpi()
        me, size = self.comm.Get_rank(), self.comm.Get_size()
        waiting = {r for r in range(size) if r != me}
        for r in waiting:
            try:
                self._sends.append(self.heartbeat.Isend(self._token, r, _PING))
            except MPI.Exception:
                pass  # a peer whose process is gone; it stays silent
        end = time.monotonic() + self.grace
        status = MPI.Status()
        while waiting and time.monotonic() < end:
            try:
                self._answer_pings()
                while self.heartbeat.Iprobe(MPI.ANY_SOURCE, _PONG, status):
                    source = status.Get_source()
                    self.heartbeat.Recv(np.empty(1, np.int8), source, _PONG)
                    waiting.discard(source)
            except MPI.Exception:
                pass
            time.sleep(1e-3)
        return sorted(waiting)

    def abort(self, what: str, reason: str) -> None:
        """Name the silent ranks on stderr and abort every rank of the job."""
        silent = self.silent_ranks()
        who = (f"no answer from rank{'s' if len(silent) > 1 else ''} "
               f"{', '.join(map(str, silent))} (died or hung)" if silent
               else "every rank answers: a peer is slower than the timeout")
        print(f"wengert-hpcgan: rank {self.comm.Get_rank()}: {what} ({self.context}) {reason}; "
              f"{who}; aborting all {self.comm.Get_size()} ranks. Resume from the last "
              "checkpoint with --resume", file=sys.stderr, flush=True)
        # Abort kills the job at once; the launcher forwards a rank's stderr through its
        # proxy, and a message still in transit was lost (seen in CI: exit 3, no text).
        time.sleep(ABORT_GRACE)
        self.comm.Abort(ABORT_CODE)
