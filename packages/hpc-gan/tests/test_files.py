"""Atomic writes: permissions, stale temporaries of dead writers, worker processes."""

import os
import subprocess
import sys
import time

import pytest
from wengert.hpcgan import files
from wengert.hpcgan.files import remove_stale_temporaries, write_atomically


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_gets_the_mode_a_plain_open_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_atomically(tmp_path / "f.bin", lambda handle: handle.write(b"x"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == mode


def test_next_write_removes_only_temporaries_of_dead_writers(tmp_path):
    target = tmp_path / "dataset.npz"
    host = files._hostname()
    dead = tmp_path / f".dataset.npz.{host}.{_dead_pid()}.0badc0de.tmp"
    alive = tmp_path / f".dataset.npz.{host}.{os.getppid()}.12345678.tmp"  # a running process
    other = tmp_path / f".other.npz.{host}.{_dead_pid()}.0badc0de.tmp"  # another file's
    remote = tmp_path / f".dataset.npz.{host}x.{_dead_pid()}.0badc0de.tmp"  # another node's
    unrelated = tmp_path / ".dataset.npz.notes.tmp"
    for path in (dead, alive, other, remote, unrelated):
        path.write_bytes(b"partial")
    write_atomically(target, lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (target, alive, other, remote, unrelated)
    )
    assert remove_stale_temporaries(tmp_path / "other.npz") == [other]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def fail(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomically(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert target.read_bytes() == b"old"


WORKER_SCRIPT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from wengert.hpcgan.workers import exit_with_parent

def pid():
    return os.getpid()

if __name__ == "__main__":
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))
    print(" ".join(str(p) for p in {pool.submit(pid).result() for _ in range(4)}), flush=True)
    time.sleep(60)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its new parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc to see zombies")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(WORKER_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert workers and all(_running(p) for p in workers)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_running(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if _running(p)]
