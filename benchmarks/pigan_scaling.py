"""Weak and strong scaling of distributed PI-GAN training: a thin caller of
``wengert-hpcgan bench`` (the code lives in ``wengert.hpcgan.bench``; see "Scaling study"
in packages/hpc-gan/README.md), with the report rows of `make bench`.  Other arguments
are passed through, e.g.

    python benchmarks/pigan_scaling.py --ranks 1 2 --markdown scaling.md
    python benchmarks/pigan_scaling.py --quick --json rows.json      # make bench
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from report_rows import Row, add_json_option, write_rows
from wengert.hpcgan.cli import main

WEAK_TARGET = 1 / 0.931  # t_N / t_1 at SC19's 93.1 % weak-scaling efficiency


def rows_of(measurements: list[dict]) -> list[Row]:
    """One row per configuration beyond the fewest ranks: its step time against the base's."""
    out = []
    for m in measurements:
        c = m["config"]
        if c["ranks"] == m["base_ranks"]:
            continue
        base = next(b for b in measurements if b["config"]["ranks"] == m["base_ranks"]
                    and (b["config"]["mode"], b["config"]["decomp"]) == (c["mode"], c["decomp"]))
        weak = c["mode"] == "weak"
        peer = base["step_seconds"] * (1 if weak else base["replicas"] / m["replicas"])
        out.append(Row("hpc-gan", f"{c['mode']} scaling, {c['preset']} {c['decomp']}, "
                       f"{c['ranks']} ranks: step time", m["step_seconds"], peer,
                       f"our {m['base_ranks']}-rank run" + ("" if weak else ", ideally split"),
                       "s", WEAK_TARGET if weak else None,
                       notes=f"efficiency {100 * m['efficiency']:.1f} %, communication "
                             f"{100 * m['comm_fraction']:.1f} % of the step"))
    return out


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="--steps 8 --warmup 3 (make bench)")
    add_json_option(parser)
    args, rest = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "bench.json"
        code = main(["bench", *(["--steps", "8"] if args.quick else []), *rest,
                     "--json", str(results)])
        if code == 0:
            write_rows(args.json, rows_of(json.loads(results.read_text())["measurements"]))
    return code


if __name__ == "__main__":
    sys.exit(run())
