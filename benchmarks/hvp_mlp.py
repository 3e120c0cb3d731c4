"""Hessian-vector product of a tanh MLP with respect to its inputs, batched:
the PI-GAN's inner workload (second derivatives of a generator in x).

Network: 2 -> 128 -> 128 -> 128 -> 128 -> 1 (4 hidden tanh layers of 128),
10,000 points, float32. ``f(X) = sum(u(X))`` with ``u`` pointwise, so
``H(X) V`` is every point's Hessian times its own row of ``V``. Measured in
one run against PyTorch ``torch.func.jvp(torch.func.grad(f))`` and JAX eager
``jax.jvp(jax.grad(f))`` (no ``jit``): forward over reverse in all three.
Every library uses the same number of threads. Peers are optional.

Run: ``python benchmarks/hvp_mlp.py [--threads N] [--points 10000]``.
"""

from __future__ import annotations

import argparse
import os
import platform

from report_rows import Row, add_json_option, write_rows
from timing import median_seconds

SIZES = [2, 128, 128, 128, 128, 1]


def make_problem(points: int, dtype):
    import numpy as np

    rng = np.random.default_rng(0)
    params = [((rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype),
               (rng.standard_normal(b) * 0.1).astype(dtype)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    x = rng.uniform(-1, 1, (points, 2)).astype(dtype)
    v = rng.standard_normal((points, 2)).astype(dtype)
    return params, x, v


def mlp_sum(np_like, params):
    def f(x):
        for w, b in params[:-1]:
            x = np_like.tanh(x @ w + b)
        w, b = params[-1]
        return np_like.sum(x @ w + b)

    return f


def bench_wengert(params, x, v, repeats):
    import wengert.ad as ad
    import wengert.ad.numpy as wnp

    f = mlp_sum(wnp, params)
    return median_seconds(lambda: ad.hvp(f, x, v), repeats, warmup=2), ad.hvp(f, x, v)


def bench_torch(params, x, v, repeats, threads):
    import numpy as np
    import torch
    from torch.func import grad, jvp

    torch.set_num_threads(threads)
    tp = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in params]
    f = mlp_sum(torch, tp)
    tx, tv = torch.from_numpy(x), torch.from_numpy(v)

    def run():
        with torch.no_grad():
            return jvp(grad(f), (tx,), (tv,))[1]

    return median_seconds(run, repeats, warmup=2), np.asarray(run())


def bench_jax(params, x, v, repeats):
    import jax
    import jax.numpy as jnp
    import numpy as np

    jp = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
    f = mlp_sum(jnp, jp)
    jx, jv = jnp.asarray(x), jnp.asarray(v)

    def run():
        return jax.jvp(jax.grad(f), (jx,), (jv,))[1].block_until_ready()

    return median_seconds(run, repeats, warmup=2), np.asarray(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 repeats (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 3
    # Thread pools are sized at import: pin the process to N cores (XLA sizes its pool
    # from the affinity mask) and tell the BLAS/OpenMP pools, before anything loads.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args.float64:
        os.environ["JAX_ENABLE_X64"] = "1"
    import numpy as np

    dtype = np.float64 if args.float64 else np.float32
    params, x, v = make_problem(args.points, dtype)
    print(f"HVP of a 4x128 tanh MLP w.r.t. its 2-D input, {args.points} points, "
          f"{np.dtype(dtype).name}, {args.threads} threads, {platform.processor() or 'cpu'}")
    results = {}
    t, ref = bench_wengert(params, x, v, args.repeats)
    results["wengert.ad hvp (jvp of grad)"] = t
    for name, bench in (("torch.func jvp(grad)", lambda: bench_torch(params, x, v, args.repeats,
                                                                      args.threads)),
                        ("JAX eager jvp(grad)", lambda: bench_jax(params, x, v, args.repeats))):
        try:
            t, out = bench()
        except ImportError as exc:
            print(f"  {name}: skipped ({exc})")
            continue
        err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
        tol = 1e-10 if args.float64 else 1e-4
        if not err < tol:
            raise SystemExit(f"{name} disagrees with wengert.ad: relative error {err:.1e}")
        results[name] = t
    base = results["wengert.ad hvp (jvp of grad)"]
    print(f"{'':32s} {'ms':>9s} {'time / wengert':>15s}")
    for name, t in results.items():
        print(f"{name:32s} {t * 1e3:9.2f} {t / base:15.2f}")
    workload = (f"HVP of a 4x128 tanh MLP, {args.points} points, {np.dtype(dtype).name}, "
                f"{args.threads} threads")
    peers = {name: t for name, t in results.items() if not name.startswith("wengert")}
    write_rows(args.json, [Row("ad-core", workload, base * 1e3, t * 1e3, name.split(" jvp")[0],
                               "ms", 1.0) for name, t in peers.items()])


if __name__ == "__main__":
    main()
