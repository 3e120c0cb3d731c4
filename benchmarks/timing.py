"""Timing and memory helpers shared by the benchmark scripts (one definition of
"median time" and "peak memory", so every script reports the same quantity)."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` untimed runs
    (caches, lazy imports and allocator pools are then warm for every contender)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def race(a: Callable[[], object], b: Callable[[], object], repeats: int,
         warmup: int = 1) -> tuple[float, float]:
    """Median wall times of ``a()`` and ``b()``, run alternately after ``warmup`` untimed
    rounds, so that both contenders see the same machine load."""
    for _ in range(warmup):
        a(), b()
    times: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for run, out in ((a, times[0]), (b, times[1])):
            t0 = time.perf_counter()
            run()
            out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def peak_traced_bytes(fn: Callable[[], object]) -> int:
    """Peak memory allocated through Python's allocators (NumPy included) during one
    call of ``fn``, above what was allocated before it."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
