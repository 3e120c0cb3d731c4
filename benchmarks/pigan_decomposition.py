"""Level-1 domain decomposition against one domain on ``tiny``: the same networks and
steps trained on the whole site (one process) and on ``--decomp 2x1`` subdomains
(``mpiexec -n 2``), both evaluated against the Monte Carlo dataset; prints each error and
the ratio decomposed / single (the issue's bar: every ratio ≤ 1.5).

    python benchmarks/pigan_decomposition.py [--steps 150] [--samples 48] [--out DIR]

Needs mpi4py and mpiexec (pip install 'wengert-hpcgan[mpi]').  Minutes of CPU time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from report_rows import Row, add_json_option, write_rows
from wengert.hpcgan import load_preset, simulate
from wengert.hpcgan.pigan.evaluation import evaluate

NETWORKS = ["width=16", "depth=2", "critic_width=16", "critic_depth=2", "batch=16",
            "physics_batch=4", "collocation=48", "boundary=16", "log_every=10",
            "checkpoint_every=1000"]
ERRORS = ("u_mean_rel_l2", "u_std_rel_l2", "Y_mean_rms_in_sigma", "Y_std_rel_l2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--samples", type=int, default=48, help="Monte Carlo realisations")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    parser.add_argument("--quick", action="store_true",
                        help="--steps 40 --samples 24 (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.samples = 40, 24
    out = Path(args.out or tempfile.mkdtemp(prefix="pigan-decomposition-"))
    data = out / "data"
    if not data.exists():
        simulate(load_preset("tiny"), data, samples=args.samples, seed=0, progress=False)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    train = [sys.executable, "-m", "wengert.hpcgan.cli", "train", "--preset", "tiny",
             "--data", str(data), "--backend", "eager", "--steps", str(args.steps), "--quiet",
             "--set", *NETWORKS]
    for name, launch in (("single", []),
                         ("decomposed", [str(mpiexec if mpiexec.exists() else "mpiexec"),
                                         "-n", "2"])):
        shutil.rmtree(out / name, ignore_errors=True)
        extra = ["--decomp", "2x1"] if launch else []
        subprocess.run([*launch, *train, "--out", str(out / name), *extra], check=True)
    errors = {name: evaluate(out / name, samples=200, figures=False)["pigan"]["site"]
              for name in ("single", "decomposed")}
    print(f"tiny, {args.steps} iterations, {args.samples} Monte Carlo realisations, "
          "200 generated")
    print(f"{'error':22s} {'single':>10s} {'2x1':>10s} {'ratio':>8s}")
    for key in ERRORS:
        a, b = errors["single"][key], errors["decomposed"][key]
        print(f"{key:22s} {a:10.4f} {b:10.4f} {b / a:8.2f}")
    write_rows(args.json, [Row("hpc-gan", f"2x1 decomposition, tiny, {args.steps} iterations: "
                               f"{key}", errors["decomposed"][key], errors["single"][key],
                               "our one-domain run", "error", 1.5) for key in ERRORS])


if __name__ == "__main__":
    main()
