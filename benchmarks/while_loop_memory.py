"""Reverse mode through a staged `while_loop`: memory and time of the carry
stack versus ``checkpoint_every=32``, for 1,000 iterations.

The loop integrates ``x <- x + 0.01 * tanh(x @ W)`` for a data-dependent
number of steps (an input of the graph, here 1,000; ``max_steps=1000``) on a
carry of 64 x 256 float64 values (128 KiB). ``make_graph(grad(loss))`` stages
forward and backward into one graph; `eval_graph` runs it with NumPy. The
stack variant stores all 1,000 carries; the checkpointed one stores every
32nd carry and recomputes each 32-step segment in the backward pass. For
reference: the same gradient by the eager tape (each step recorded).
Peak memory by tracemalloc (NumPy allocations), time as the median of runs.

Run: ``python benchmarks/while_loop_memory.py [--steps 1000]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from report_rows import Row, add_json_option, write_rows
from timing import median_seconds, peak_traced_bytes

import wengert.ad as ad
import wengert.ad.numpy as wnp


def loss(checkpoint_every: int | None, max_steps: int) -> Callable:
    def f(x0, w, n):
        def body(c):
            i, x = c
            return i + 1, x + 0.01 * wnp.tanh(x @ w)

        _, x = ad.while_loop(lambda c: c[0] < n, body, (0, x0), max_steps=max_steps,
                             checkpoint_every=checkpoint_every)
        return wnp.sum(x * x)

    return f


def measure(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    return median_seconds(fn, repeats), peak_traced_bytes(fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 2
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((64, 256))
    w = rng.standard_normal((256, 256)) / 16
    n = np.array(args.steps)
    carry_kib = x0.nbytes / 1024
    print(f"gradient of a staged while_loop, {args.steps} iterations, carry {carry_kib:.0f} KiB "
          f"(stack of all carries: {args.steps * carry_kib / 1024:.0f} MiB)")
    rows = {}
    grads = {}
    for name, k in (("stack (all carries)", None), ("checkpoint_every=32", 32)):
        graph = ad.make_graph(ad.grad(loss(k, args.steps), argnums=(0, 1)), x0, w, n)
        grads[name] = ad.eval_graph(graph, x0, w, n)
        rows[name] = measure(lambda: ad.eval_graph(graph, x0, w, n), args.repeats)
    forward = ad.make_graph(loss(None, args.steps), x0, w, n)
    rows["forward only (staged)"] = measure(lambda: ad.eval_graph(forward, x0, w, n),
                                            args.repeats)
    eager = ad.grad(loss(None, args.steps), argnums=(0, 1))
    grads["eager tape"] = eager(x0, w, n)
    rows["eager tape (reference)"] = measure(lambda: eager(x0, w, n), max(1, args.repeats // 2))
    reference = grads["eager tape"]
    for name, g in grads.items():
        for a, b in zip(g, reference):
            np.testing.assert_allclose(a, b, rtol=1e-9, err_msg=name)
    base_t, base_m = rows["stack (all carries)"]
    print(f"{'':26s} {'time s':>8s} {'vs stack':>9s} {'peak MiB':>9s} {'vs stack':>9s}")
    for name, (t, m) in rows.items():
        print(f"{name:26s} {t:8.3f} {t / base_t:9.2f} {m / 2**20:9.1f} {m / base_m:9.3f}")
    t, m = rows["checkpoint_every=32"]
    workload = f"staged while_loop gradient, {args.steps} iterations, checkpoint_every=32"
    write_rows(args.json, [
        Row("ad-core", f"{workload}: time", t * 1e3, base_t * 1e3, "our carry stack", "ms"),
        Row("ad-core", f"{workload}: peak memory", m / 2**20, base_m / 2**20,
            "our carry stack", "MiB")])


if __name__ == "__main__":
    main()
