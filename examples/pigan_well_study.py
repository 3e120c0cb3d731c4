"""How the PI-GAN's errors fall with the number of wells it trains on.

For each count N, trains the preset's PI-GAN on the first N wells of each kind of the
chosen network (the networks are in farthest-point order, so every prefix is spread
over the site), evaluates it against Monte Carlo and at the held-out validation wells,
and draws the errors against N:

    .venv/bin/python examples/pigan_well_study.py --preset tiny --problem forward \\
        --counts 4 8 16 30 --steps 1500 --out well-study

Writes OUT/study.json and OUT/study.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from wengert.hpcgan.pigan import evaluate, train

CURVES = (("site", "u_mean_rel_l2", "u mean (rel. L2)"),
          ("site", "u_std_rel_l2", "u std (rel. L2)"),
          ("validation_wells", "Y_mean_rms_in_sigma", "Y mean at validation wells (σ_Y)"),
          ("validation_wells", "Y_std_rel_l2", "Y std at validation wells (rel.)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--problem", choices=("forward", "inverse"), default="forward")
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 8, 16, 30])
    parser.add_argument("--steps", type=int, help="iterations per run (default: the preset's)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", default="well-study")
    args = parser.parse_args()
    out = Path(args.out)
    rows = []
    for count in args.counts:
        run = out / f"{args.problem}-{count}"
        resume = (run / "run.json").exists()
        train(args.preset, out=run, problem=args.problem, backend=args.backend, steps=args.steps,
              resume=resume, overrides={"well_limit": count})
        metrics = evaluate(run, samples=500, figures=False)
        rows.append({"wells": count, **{f"{where}.{key}": metrics["pigan"][where][key]
                                        for where, key, _ in CURVES}})
        print(rows[-1])
    (out / "study.json").write_text(json.dumps(rows, indent=2))
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for where, key, label in CURVES:
        ax.plot([r["wells"] for r in rows], [r[f"{where}.{key}"] for r in rows], "o-",
                label=label)
    ax.set_xlabel(f"wells of each kind in the {args.problem} network")
    ax.set_ylabel("error")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.savefig(out / "study.png", dpi=110, bbox_inches="tight")
    print(f"wrote {out / 'study.json'} and {out / 'study.png'}")


if __name__ == "__main__":  # dataset generation spawns processes that import this file
    main()
