"""VGG forward and forward+backward: `wengert.xla` vs eager `wengert.ad` vs direct JAX.

The XLA.jl experiment (Fischer & Saba 2018) in Python: a `wengert.nn` VGG and
its gradient (`ad.grad` of the loss with respect to the parameters) each
compiled into ONE XLA executable, against the same network written directly
in JAX (`jax.lax` + `jax.grad`), measured in the same run.

* CPU (default): VGG-11, 64x64x3, batch 8, float32. Eager `wengert.ad` on
  NumPy is the baseline. Targets: compiled >= 3x faster than eager; run time
  within 1.10x of direct JAX; compile time <= 1.5x JAX's.
* GPU (``--device gpu``): VGG-19, 224x224x3, batch 100, float32 and bfloat16
  (bfloat16: float32 master parameters cast inside the step, loss in float32,
  in both implementations).
  Target: within 1.05x of direct JAX. Reference (H200, direct JAX, 2026-11-28):
  forward 12.8 ms (fp32) / 7.2 ms (bf16), fwd+bwd 60 ms / 27.8 ms.

    python benchmarks/xla_vgg19.py                       # CPU table (~2 minutes on 2 cores)
    python benchmarks/xla_vgg19.py --device gpu --quick  # GPU table (~3 minutes on an H100)
    ... --jax-relu select    # JAX with wengert.nn's ReLU formulation: same program, compilers only

Run times are medians over ``--repeats`` calls (the contenders alternate, each
output waited for). Compile time is staging + lowering + XLA compilation from
a cold cache. JAX's GPU preallocation (75 % of the card) is switched off
unless ``XLA_PYTHON_CLIENT_PREALLOCATE`` is set, so the script can share a
GPU; set it to ``true`` to measure with preallocation.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import wengert.ad as ad  # noqa: E402
import wengert.nn as nn  # noqa: E402
import wengert.xla as xla  # noqa: E402
from report_rows import Row, add_json_option, write_rows  # noqa: E402
from wengert.nn.models.vgg import _CONFIGS, VGG  # noqa: E402

DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


# ---- the two implementations of one network -----------------------------------------------


def wengert_forward(model: Any, x: Any, dtype: np.dtype) -> Any:
    """Float32 master parameters, computed in ``dtype`` (mixed precision for bfloat16)."""
    return ad.tree_map(lambda p: p.astype(dtype), model)(x.astype(dtype))


def wengert_loss(model: Any, x: Any, labels: Any, dtype: np.dtype) -> Any:
    return nn.logitcrossentropy(wengert_forward(model, x, dtype).astype(np.float32), labels)


def _select_relu(x: jax.Array) -> jax.Array:
    return jnp.where(x > 0, x, 0)  # wengert.nn.relu's formulation


RELU = {"max": jax.nn.relu, "select": _select_relu}


def jax_forward(params: list, x: jax.Array, depth: int, dtype: np.dtype,
                relu: str = "max") -> jax.Array:
    """VGG written directly in JAX: 3x3 SAME convolutions + bias + ReLU, 2x2 max
    pooling, then three dense layers (ReLU on the first two)."""
    act = RELU[relu]
    leaves = iter([p.astype(dtype) for p in params])
    x = x.astype(dtype)
    for v in _CONFIGS[depth]:
        if v == "M":
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        else:
            w, b = next(leaves), next(leaves)
            x = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = act(x + b)
    x = x.reshape(x.shape[0], -1)
    for k in range(3):
        w, b = next(leaves), next(leaves)
        x = x @ w + b
        x = act(x) if k < 2 else x
    return x


def jax_loss(params: list, x: jax.Array, labels: jax.Array, depth: int,
             dtype: np.dtype, relu: str = "max") -> jax.Array:
    logits = jax_forward(params, x, depth, dtype, relu).astype(jnp.float32)
    return jnp.mean(-jnp.sum(labels * jax.nn.log_softmax(logits), -1))


# ---- measurement ---------------------------------------------------------------------------


def compile_seconds(lower: Callable[[], Any]) -> float:
    start = time.perf_counter()
    lower().compile()
    return time.perf_counter() - start


def compile_medians(lower_ours: Callable[[], Any], lower_jax: Callable[[], Any],
                    rounds: int = 3) -> tuple[float, float]:
    """Median compile times from fresh jit objects, in alternating order: the first
    compilation in a process pays XLA's one-time start-up (~0.1 s on CPU), which
    must not be charged to whichever side happens to go first."""
    ours, theirs = [], []
    for r in range(rounds):
        pair = [(ours, lower_ours), (theirs, lower_jax)]
        for times, lower in (pair if r % 2 else pair[::-1]):
            times.append(compile_seconds(lower))
    return statistics.median(ours), statistics.median(theirs)


def _wait(out: Any) -> None:
    """Block on every array of an output tree (a model-shaped gradient included)."""
    jax.block_until_ready(ad.tree_leaves(out))


def in_layer_order(out: Any) -> list:
    """The leaves of a VGG model (or of its model-shaped gradient) in the order the
    network runs them, as ``jax_forward`` takes them: ``tree_leaves`` visits the named
    children ``features`` and ``classifier`` sorted by name, the classifier first."""
    if isinstance(out, nn.Chain):
        return ad.tree_leaves((out["features"], out["classifier"]))
    return ad.tree_leaves(out)


def _relative_difference(ours: Any, theirs: Any) -> float:
    """Largest difference between the two results, relative to each leaf's magnitude:
    a timing only counts for a program that computes the same thing."""
    worst = 0.0
    ours, theirs = in_layer_order(ours), jax.tree_util.tree_leaves(theirs)
    if len(ours) != len(theirs):
        raise SystemExit(f"the two results have {len(ours)} and {len(theirs)} arrays")
    for a, b in zip(ours, theirs):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)))
    return worst


def run_medians(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median milliseconds per call; the contenders alternate, after one warm-up each."""
    for fn in contenders.values():
        _wait(fn())
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            _wait(fn())
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def measure(depth: int, size: int, batch: int, dtype: np.dtype, device: jax.Device,
            repeats: int, eager_repeats: int, relu: str) -> list[dict]:
    rng = np.random.default_rng(0)
    model = VGG(depth, imsize=(size, size, 3), nclasses=1000, dropout=0.0, rng=rng)
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    labels = nn.onehot(rng.integers(0, 1000, batch), 1000)

    on_device = ad.tree_map(lambda a: jax.device_put(a, device), (model, x, labels))
    params = [jax.device_put(p, device) for p in in_layer_order(model)]
    jx, jlabels = on_device[1], on_device[2]

    def make_ours_fwd():
        return xla.jit(functools.partial(wengert_forward, dtype=dtype), device=device)

    def make_ours_grad():
        return xla.jit(ad.grad(functools.partial(wengert_loss, dtype=dtype)), device=device)

    def make_jax_fwd():
        return jax.jit(functools.partial(jax_forward, depth=depth, dtype=dtype, relu=relu))

    def make_jax_grad():
        return jax.jit(jax.grad(functools.partial(jax_loss, depth=depth, dtype=dtype,
                                                  relu=relu)))

    ours_fwd, ours_grad, jax_fwd, jax_grad = (make_ours_fwd(), make_ours_grad(),
                                              make_jax_fwd(), make_jax_grad())
    eager_fwd = functools.partial(wengert_forward, model, x, dtype)
    eager_grad = functools.partial(ad.grad(wengert_loss), model, x, labels, dtype)

    rows = []
    for name, ours, theirs, make_ours, make_theirs, ours_args, jax_args, eager in (
            ("forward", ours_fwd, jax_fwd, make_ours_fwd, make_jax_fwd, on_device[:2],
             (params, jx), eager_fwd),
            ("fwd+bwd", ours_grad, jax_grad, make_ours_grad, make_jax_grad, on_device,
             (params, jx, jlabels), eager_grad)):
        ours_compile, jax_compile = compile_medians(
            lambda: make_ours().lower(*ours_args), lambda: make_theirs().lower(*jax_args))
        agreement = _relative_difference(ours(*ours_args), theirs(*jax_args))
        ms = run_medians({"ours": lambda: ours(*ours_args),
                          "jax": lambda: theirs(*jax_args)}, repeats)
        if eager_repeats:
            ms.update(run_medians({"eager": eager}, eager_repeats))
        rows.append(dict(dtype=dtype.name, pass_=name, compile_ours=ours_compile,
                         compile_jax=jax_compile, diff=agreement, **ms))
    return rows


def table(rows: list[dict], eager: bool, target: float) -> str:
    head = ["dtype", "pass", "wengert.xla ms", "JAX ms", "xla/JAX", "diff vs JAX"]
    if eager:
        head[2:2] = ["eager ms"]
        head += ["eager/xla"]
    head += ["compile xla s", "compile JAX s", "compile ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["dtype"], r["pass_"]]
        if eager:
            cells.append(f"{r['eager']:.1f}")
        cells += [f"{r['ours']:.2f}", f"{r['jax']:.2f}", f"{r['ours'] / r['jax']:.3f}",
                  f"{r['diff']:.1e}"]
        if eager:
            cells.append(f"{r['eager'] / r['ours']:.1f}x")
        cells += [f"{r['compile_ours']:.2f}", f"{r['compile_jax']:.2f}",
                  f"{r['compile_ours'] / r['compile_jax']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    verdicts = ["results agree with JAX (relative difference < 5e-2, TF32/bfloat16 "
                "rounding): " + ("yes" if all(r["diff"] < 5e-2 for r in rows) else "NO")]
    verdicts += [f"run time within {target:.2f}x of JAX: "
                + ("yes" if all(r["ours"] <= target * r["jax"] for r in rows) else "NO")]
    if eager:
        verdicts.append("compiled >= 3x faster than eager: "
                        + ("yes" if all(r["eager"] >= 3 * r["ours"] for r in rows) else "NO"))
        verdicts.append("compile time <= 1.5x JAX's: "
                        + ("yes" if all(r["compile_ours"] <= 1.5 * r["compile_jax"]
                                        for r in rows) else "NO"))
    return "\n".join(lines + [""] + ["* " + v for v in verdicts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "gpu", "tpu"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer timed repeats")
    parser.add_argument("--depth", type=int, choices=sorted(_CONFIGS))
    parser.add_argument("--size", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES))
    parser.add_argument("--jax-relu", choices=sorted(RELU), default="max",
                        help="JAX's ReLU: max(x, 0) (jax.nn.relu) or wengert.nn's select")
    add_json_option(parser)
    args = parser.parse_args()
    cpu = args.device == "cpu"
    depth = args.depth or (11 if cpu else 19)
    size = args.size or (64 if cpu else 224)
    batch = args.batch or (8 if cpu else 100)
    dtypes = args.dtypes or (["float32"] if cpu else ["float32", "bfloat16"])
    repeats = (5 if args.quick else 15) if cpu else (10 if args.quick else 50)
    eager_repeats = (2 if args.quick else 3) if cpu else 0
    device = xla.resolve_device(args.device)

    rows = []
    for name in dtypes:
        rows += measure(depth, size, batch, DTYPES[name], device, repeats, eager_repeats,
                        args.jax_relu)
    print(f"VGG-{depth}, {size}x{size}x3, batch {batch} on {device.device_kind} "
          f"({args.device}), jax {jax.__version__}, {datetime.date.today()}, "
          f"{len(os.sched_getaffinity(0))} CPU threads, median of {repeats} runs, "
          f"JAX ReLU: {args.jax_relu}\n")
    print(table(rows, eager=cpu, target=1.10 if cpu else 1.05))
    workload = f"VGG-{depth} {size}x{size}x3 batch {batch}, {args.device}"
    write_rows(args.json, report_rows(rows, workload, eager=cpu, target=1.10 if cpu else 1.05))


def report_rows(rows: list[dict], workload: str, eager: bool, target: float) -> list[Row]:
    """The targets of the module docstring, one row each."""
    out = []
    for r in rows:
        name = f"{workload}, {r['dtype']} {r['pass_']}"
        agree = f"relative difference vs JAX {r['diff']:.1e}" + (
            " (results DISAGREE: > 5e-2)" if not r["diff"] < 5e-2 else "")
        out.append(Row("xla-backend", name, r["ours"], r["jax"], "direct JAX (jax.jit)", "ms",
                       target, agree))
        if eager:
            out.append(Row("xla-backend", f"{name} (compiled >= 3x faster than eager)",
                           r["ours"], r["eager"], "eager wengert.ad", "ms", 1 / 3))
            out.append(Row("xla-backend", f"{name}: compile time", r["compile_ours"],
                           r["compile_jax"], "direct JAX (jax.jit)", "s", 1.5))
    return out


if __name__ == "__main__":
    main()
