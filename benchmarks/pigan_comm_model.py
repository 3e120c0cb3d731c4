"""The α–β performance model of the data-parallel iteration, fitted here and extrapolated
to 27,500 GPUs (hierarchical versus flat all-reduce): a thin caller of
``wengert-hpcgan bench model`` (see "Scaling study" in packages/hpc-gan/README.md), with
the report rows of `make bench`.  It launches its own ``mpiexec``; other arguments are
passed through, e.g.

    python benchmarks/pigan_comm_model.py --png comm_model.png
    python benchmarks/pigan_comm_model.py --quick --json rows.json   # make bench
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from report_rows import Row, add_json_option, write_rows
from wengert.hpcgan.cli import main


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="--steps 8 --probe-repeats 5 (make bench)")
    add_json_option(parser)
    args, rest = parser.parse_known_args()
    quick = ["--steps", "8", "--probe-repeats", "5"] if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "model.json"
        png = [] if "--png" in rest else ["--png", str(Path(tmp) / "model.png")]
        code = main(["bench", "model", *quick, *png, *rest, "--json", str(results)])
        if code != 0:
            return code
        model = json.loads(results.read_text())
    one, two = sorted(model["measured"]["runs"], key=lambda m: m["config"]["ranks"])[:2]
    at = next(v for k, v in model["modelled"].items() if k.startswith("at_"))
    write_rows(args.json, [Row(
        "hpc-gan", f"data-parallel iteration ({one['config']['preset']}), "
        f"{two['config']['ranks']} ranks with the hierarchical all-reduce",
        two["step_seconds"] * 1e3, one["step_seconds"] * 1e3, "our 1-rank iteration", "ms",
        1 / 0.931, notes=f"modelled weak efficiency at 27,500 GPUs: hierarchical "
                         f"{100 * at['hierarchical']:.1f} %, flat {100 * at['flat']:.1f} % "
                         "(SC19: 93.1 %)")])
    return 0


if __name__ == "__main__":
    sys.exit(run())
