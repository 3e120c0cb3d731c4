"""Weak and strong scaling of data-parallel PI-GAN training on ``tiny`` under mpiexec.

For 1..N ranks: *weak* keeps the realisations per rank fixed (the batch grows with the
ranks), *strong* keeps the whole batch fixed.  Each configuration trains ``--steps``
iterations; the medians of rank 0's ``step_time`` and ``comm_time`` (all-reduces,
interface exchanges) over the iterations after the first two are reported, with the
efficiencies ``t_1 / t_N`` (weak) and ``t_1 / (N t_N)`` (strong) against the 1-rank run
measured in the same invocation.  Ranks beyond the free cores oversubscribe them, and a
machine shared with other work gives numbers that say nothing about scaling.

    python benchmarks/pigan_scaling.py [--ranks 2] [--steps 12] [--per-rank 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from report_rows import Row, add_json_option, write_rows
from wengert.hpcgan import load_preset, simulate

NETWORKS = ["width=32", "depth=3", "critic_width=32", "critic_depth=3", "collocation=64",
            "boundary=16", "log_every=1", "checkpoint_every=1000"]


def run(ranks: int, batch: int, steps: int, data: Path, out: Path) -> tuple[float, float]:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    subprocess.run([str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(ranks),
                    sys.executable, "-m", "wengert.hpcgan.cli", "train", "--preset", "tiny",
                    "--data", str(data), "--out", str(out), "--backend", "eager", "--steps",
                    str(steps), "--quiet", "--replicas", str(ranks), "--set", *NETWORKS,
                    f"batch={batch}", f"physics_batch={max(batch // 4, ranks)}"], check=True,
                   stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][2:]
    return (statistics.median(r["step_time"] for r in rows),
            statistics.median(r["comm_time"] for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2, help="largest rank count")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--per-rank", type=int, default=16, help="realisations per rank (weak)")
    parser.add_argument("--quick", action="store_true", help="--steps 5 (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.steps = 5
    rows = []
    work = Path(tempfile.mkdtemp(prefix="pigan-scaling-"))
    simulate(load_preset("tiny"), work / "data", samples=48, seed=0, progress=False)
    print(f"{'mode':6s} {'ranks':>5s} {'batch':>6s} {'step s':>8s} {'comm %':>7s} "
          f"{'efficiency':>10s}")
    for mode in ("weak", "strong"):
        base = None
        for ranks in range(1, args.ranks + 1):
            batch = args.per_rank * (ranks if mode == "weak" else args.ranks)
            step, comm = run(ranks, batch, args.steps, work / "data", work / f"{mode}{ranks}")
            base = base or step
            efficiency = base / step if mode == "weak" else base / (ranks * step)
            print(f"{mode:6s} {ranks:5d} {batch:6d} {step:8.3f} {100 * comm / step:6.1f}% "
                  f"{100 * efficiency:9.1f}%", flush=True)
            if ranks > 1:
                rows.append(Row("hpc-gan", f"{mode} scaling, tiny, {ranks} ranks: step time",
                                step, base, "our 1-rank run", "s",
                                notes=f"efficiency {100 * efficiency:.1f}%, communication "
                                      f"{100 * comm / step:.1f}% of the step"))
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
