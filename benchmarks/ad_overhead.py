"""AD overhead against HIPS autograd and PyTorch eager, measured in one run.

(a) gradient of a chain of 600 elementwise ops on 10-element float64 arrays
    (``x = sin(x) * 1.01 + 0.1`` repeated 200 times): microseconds per op;
(b) gradient of an MLP 784-512-512-512-10 (tanh), batch 256, float32, as a
    ratio to a hand-written NumPy backprop of the same network;
(c) peak memory (tracemalloc) of (b) against the hand-written version.

Peers are optional: a missing one is reported and skipped. Medians of
repeated runs; the machine is shared and noisy, so read the ratios. NumPy's
BLAS and PyTorch get the same thread count (``--threads``, default 1: on a
shared 2-core machine more threads mostly measure contention).
Run: ``.venv/bin/python benchmarks/ad_overhead.py`` (peers: ``pip install autograd``).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from report_rows import Row, add_json_option, write_rows
from threadpoolctl import threadpool_limits
from timing import median_seconds, peak_traced_bytes

import wengert.ad as ad
import wengert.ad.numpy as wnp

N_REPEAT = 200  # three ops each: 600 ops


# ---- (a) elementwise chain -------------------------------------------------------------------
def chain(np_like):
    def f(x):
        for _ in range(N_REPEAT):
            x = np_like.sin(x) * 1.01 + 0.1
        return np_like.sum(x)

    return f


def bench_chain(repeats: int) -> dict[str, float]:
    x = np.linspace(0.1, 1.0, 10)
    ops = 3 * N_REPEAT
    out = {"numpy forward": median_seconds(lambda: chain(np)(x), repeats) / ops * 1e6}
    out["wengert gradient"] = median_seconds(lambda: ad.gradient(chain(wnp), x), repeats) / ops * 1e6
    try:
        import autograd
        import autograd.numpy as anp

        g = autograd.grad(chain(anp))
        out["autograd gradient"] = median_seconds(lambda: g(x), repeats) / ops * 1e6
    except ImportError:
        print("autograd not installed: skipped")
    try:
        import torch

        def torch_grad():
            xt = torch.tensor(x, requires_grad=True)
            y = xt
            for _ in range(N_REPEAT):
                y = torch.sin(y) * 1.01 + 0.1
            y.sum().backward()
            return xt.grad

        out["torch gradient"] = median_seconds(torch_grad, repeats) / ops * 1e6
    except ImportError:
        print("torch not installed: skipped")
    return out


# ---- (b, c) MLP --------------------------------------------------------------------------------
SIZES = (784, 512, 512, 512, 10)


def init_mlp(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    return [((rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32),
             np.zeros(n, np.float32)) for m, n in zip(SIZES[:-1], SIZES[1:])]


def mlp_loss(params, x, y, np_like):
    h = x
    for W, b in params[:-1]:
        h = np_like.tanh(h @ W + b)
    W, b = params[-1]
    out = h @ W + b
    return np_like.sum((out - y) ** 2) / x.shape[0]


def handwritten_grad(params, x, y):
    """Textbook backprop for the same loss: the speed and memory reference."""
    hs = [x]
    for W, b in params[:-1]:
        hs.append(np.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    out = hs[-1] @ W + b
    g = 2.0 * (out - y) / np.float32(x.shape[0])
    grads = [(hs[-1].T @ g, g.sum(0))]
    layers = list(zip(params[:-1], hs[1:], hs[:-1]))
    for k in range(len(layers) - 1, -1, -1):
        g = g @ params[k + 1][0].T
        (W, b), h, h_prev = layers[k]
        g = g * (1 - h * h)
        grads.append((h_prev.T @ g, g.sum(0)))
    return grads[::-1]  # no gradient for the input x: AD does not compute one either


def bench_mlp(repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(0)
    params = init_mlp(rng)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = rng.standard_normal((256, 10)).astype(np.float32)
    ours = lambda: ad.gradient(lambda p: mlp_loss(p, x, y, wnp), params)  # noqa: E731
    ref = lambda: handwritten_grad(params, x, y)  # noqa: E731
    # Same numbers first: a benchmark of a wrong gradient is worthless.
    for (gw, gb), (rw, rb) in zip(ours()[0], ref()):
        np.testing.assert_allclose(gw, rw, rtol=2e-3, atol=1e-5)
        np.testing.assert_allclose(gb, rb, rtol=2e-3, atol=1e-5)
    times = {"hand-written numpy": median_seconds(ref, repeats),
             "wengert": median_seconds(ours, repeats)}
    try:
        import autograd
        import autograd.numpy as anp

        g = autograd.grad(lambda p: mlp_loss(p, x, y, anp))
        times["autograd"] = median_seconds(lambda: g(params), repeats)
    except ImportError:
        pass
    try:
        import torch

        tparams = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
                   for W, b in params]
        tx, ty = torch.tensor(x), torch.tensor(y)

        def torch_grad():
            for W, b in tparams:
                W.grad = b.grad = None
            mlp_loss(tparams, tx, ty, torch).backward()

        times["torch"] = median_seconds(torch_grad, repeats)
    except ImportError:
        pass
    memory = {"hand-written numpy": peak_traced_bytes(ref), "wengert": peak_traced_bytes(ours)}
    return times, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="8 repeats (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 8
    with threadpool_limits(args.threads, "blas"):
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
        write_rows(args.json, run(args))


def run(args: argparse.Namespace) -> list[Row]:
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; "
          f"numpy {np.__version__}; threads {args.threads}; date {time.strftime('%Y-%m-%d')}")
    chain_us = bench_chain(args.repeats)
    print("\n(a) gradient of a 600-op elementwise chain, 10 float64 elements: us/op (median)")
    for k, v in chain_us.items():
        print(f"  {k:20s} {v:7.2f}")
    if "torch gradient" in chain_us:
        print(f"  wengert / torch      {chain_us['wengert gradient'] / chain_us['torch gradient']:7.2f}x")
    times, memory = bench_mlp(max(5, args.repeats // 3))
    base = times["hand-written numpy"]
    print("\n(b) gradient of MLP 784-512-512-512-10 tanh, batch 256, float32 (median)")
    for k, v in times.items():
        print(f"  {k:20s} {v * 1e3:8.2f} ms  {v / base:5.2f}x hand-written")
    mb = memory["hand-written numpy"]
    print("\n(c) peak traced memory of (b)")
    for k, v in memory.items():
        print(f"  {k:20s} {v / 2**20:8.2f} MiB  {v / mb:5.2f}x hand-written")
    return report_rows(chain_us, times, memory)


def report_rows(chain_us: dict, times: dict, memory: dict) -> list[Row]:
    ours = chain_us["wengert gradient"]
    chain = "(a) gradient of a 600-op elementwise chain, 10 float64"
    rows = [Row("ad-core", chain, ours, chain_us["numpy forward"], "NumPy forward alone",
                "us/op", 1.5, target_on="ours")]
    rows += [Row("ad-core", chain, ours, chain_us[f"{peer} gradient"], label, "us/op", target)
             for peer, label, target in (("torch", "PyTorch eager", 1.0),
                                         ("autograd", "HIPS autograd", None))
             if f"{peer} gradient" in chain_us]
    mlp = "(b) gradient of MLP 784-512-512-512-10 tanh, batch 256, float32"
    rows += [Row("ad-core", mlp, times["wengert"] * 1e3, times[peer] * 1e3, label, "ms", target)
             for peer, label, target in (("hand-written numpy", "hand-written NumPy", 1.10),
                                         ("torch", "PyTorch eager", None),
                                         ("autograd", "HIPS autograd", None)) if peer in times]
    rows.append(Row("ad-core", "(c) peak traced memory of (b)", memory["wengert"] / 2**20,
                    memory["hand-written numpy"] / 2**20, "hand-written NumPy", "MiB", 1.3))
    return rows


if __name__ == "__main__":
    main()
