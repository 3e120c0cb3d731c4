"""Level-1 domain decomposition against one domain on ``tiny``: the preset's training
configuration, the same seed and iteration budget, trained on the whole site (one
process) and on ``--decomp 2x1`` subdomains (``mpiexec -n 2``), both evaluated against an
independent Monte Carlo reference (another seed, never seen in training); prints each
error and the ratio decomposed / single (the issue's bar: every ratio ≤ 1.5).
``tests/test_decomposition_accuracy.py`` (manual) asserts the same at 1,000 iterations.

    python benchmarks/pigan_decomposition.py [--steps 1000] [--out DIR] [--set KEY=VALUE ...]
    python benchmarks/pigan_decomposition.py --quick --json rows.json   # make bench (40 iterations)

Needs mpi4py and mpiexec (pip install 'wengert-hpcgan[mpi]').  About 10 minutes on 2 cores.
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

ERRORS = ("u_mean_rel_l2", "u_std_rel_l2", "Y_mean_rms_in_sigma", "Y_std_rel_l2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="training overrides for both runs")
    parser.add_argument("--quick", action="store_true", help="--steps 40 (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.steps = 40
    out = Path(args.out or tempfile.mkdtemp(prefix="pigan-decomposition-"))
    preset = load_preset("tiny")
    for name, samples, seed in (("data", 200, 0), ("reference", 1000, 1)):
        if not (out / name).exists():
            simulate(preset, out / name, samples=samples, seed=seed, progress=False)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    train = [sys.executable, "-m", "wengert.hpcgan.cli", "train", "--preset", "tiny",
             "--data", str(out / "data"), "--backend", "auto", "--steps", str(args.steps),
             "--quiet", *(["--set", *args.set] if args.set else [])]
    for name, launch in (("single", []),
                         ("decomposed", [str(mpiexec if mpiexec.exists() else "mpiexec"),
                                         "-n", "2"])):
        shutil.rmtree(out / name, ignore_errors=True)
        extra = ["--decomp", "2x1"] if launch else []
        subprocess.run([*launch, *train, "--out", str(out / name), *extra], check=True)
    errors = {name: evaluate(out / name, reference=out / "reference", samples=500,
                             figures=False)["pigan"]["site"]
              for name in ("single", "decomposed")}
    print(f"tiny, {args.steps} iterations; trained on 200 realisations (seed 0), evaluated "
          "against 1,000 others (seed 1) with 500 generated")
    print(f"{'error':22s} {'single':>10s} {'2x1':>10s} {'ratio':>8s}")
    for key in ERRORS:
        a, b = errors["single"][key], errors["decomposed"][key]
        print(f"{key:22s} {a:10.4f} {b:10.4f} {b / a:8.2f}")
    write_rows(args.json, [Row("hpc-gan", f"2x1 decomposition, tiny, {args.steps} iterations: "
                               f"{key}", errors["decomposed"][key], errors["single"][key],
                               "our one-domain run", "error", 1.5) for key in ERRORS])


if __name__ == "__main__":
    main()
