"""Time per training epoch: wengert.nn against PyTorch eager, same run, same machine.

Two workloads, identical architecture, batch size, optimiser (Adam) and
thread count on both sides:

* the digits CNN of examples/digits_cnn.py (1,437 8x8 images, batch 32);
* an MLP 784-512-512-10 on random data (8,192 samples, batch 128).

NumPy's BLAS and PyTorch get the same number of threads (``--threads``,
default: what NumPy's BLAS uses now). Prints median epoch times and the
ratio ours / PyTorch.

    python benchmarks/nn_train.py [--epochs 5] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from report_rows import Row, add_json_option, write_rows
from threadpoolctl import threadpool_info, threadpool_limits
from timing import race
from wengert import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import digits_cnn


def ours(model, x, y, batch: int):
    data = nn.DataLoader((x, y), batch, shuffle=True, rng=0)
    loss = lambda m, x, y: nn.logitcrossentropy(m(x), y)
    opt = nn.Adam(1e-3)
    state = [model, opt.init(model)]

    def epoch():
        for xb, yb in data:
            state[0], state[1], _ = nn.train_step(state[0], loss, (xb, yb), opt, state[1])

    return epoch


def theirs(module, x, labels, batch: int):
    opt = torch.optim.Adam(module.parameters(), 1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx]).backward()
            opt.step()

    return epoch


def digits_torch() -> torch.nn.Module:
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Flatten(), tnn.Linear(128, 64), tnn.ReLU(), tnn.Linear(64, 10))


def mlp_torch() -> torch.nn.Module:
    tnn = torch.nn
    return tnn.Sequential(tnn.Linear(784, 512), tnn.ReLU(), tnn.Linear(512, 512), tnn.ReLU(),
                          tnn.Linear(512, 10))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="2 timed epochs (make bench)")
    add_json_option(p)
    args = p.parse_args()
    if args.quick:
        args.epochs = 2
    threads = args.threads or max(i["num_threads"] for i in threadpool_info()
                                  if i["user_api"] == "blas")
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x_train, _, y_train, _ = digits_cnn.load()
    x_mlp = rng.standard_normal((8192, 784)).astype(np.float32)
    y_mlp = rng.integers(0, 10, 8192)
    rows = []
    with threadpool_limits(threads, "blas"):
        rows.append(("digits CNN (batch 32)", *race(
            ours(digits_cnn.model(rng), x_train, nn.onehot(y_train, 10), 32),
            theirs(digits_torch(), np.ascontiguousarray(x_train.transpose(0, 3, 1, 2)),
                   y_train.astype(np.int64), 32), args.epochs)))
        rows.append(("MLP 784-512-512-10 (batch 128)", *race(
            ours(nn.models.MLP([784, 512, 512, 10], rng=rng), x_mlp, nn.onehot(y_mlp, 10), 128),
            theirs(mlp_torch(), x_mlp, y_mlp, 128), args.epochs)))
    print(f"threads: {threads} (NumPy BLAS and torch), torch {torch.__version__}, "
          f"numpy {np.__version__}, median of {args.epochs} alternating epochs")
    print("| workload | wengert.nn s/epoch | PyTorch eager s/epoch | ratio |")
    print("|---|---:|---:|---:|")
    for name, a, b in rows:
        print(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")
    # Issue 14's targets: <= 1.5x PyTorch eager, the MLP <= 1.2x.
    write_rows(args.json, [Row("nn", f"{name}, training epoch, {threads} thread(s)", a, b,
                               "PyTorch eager", "s", 1.2 if "MLP" in name else 1.5)
                           for name, a, b in rows])


if __name__ == "__main__":
    main()
