"""The main job (``make demo``): the physics-informed GAN of the ``tiny`` Hanford-like site,
end to end — Monte Carlo reference data, PI-GAN training with a progress bar, evaluation
against Monte Carlo — then where the report is and a three-line summary of the errors.

Everything goes through the installed command, exactly as a user would type it:

    wengert-hpcgan simulate --preset tiny --out demo/data
    wengert-hpcgan train    --preset tiny --data demo/data --out demo/run
    wengert-hpcgan evaluate demo/run

A second ``make demo`` reuses the data and the finished run (``--resume`` with nothing
left to train) and evaluates again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from wengert.hpcgan.cli import main

OUT = Path("demo")


def step(*argv: str) -> None:
    code = main(list(argv))
    if code != 0:
        sys.exit(code)


if __name__ == "__main__":  # the solver processes are spawned and import this file
    start = time.perf_counter()
    data, run = OUT / "data", OUT / "run"
    if not (data / "dataset.npz").exists():
        step("simulate", "--preset", "tiny", "--out", str(data))
    resume = ["--resume"] if (run / "run.json").exists() else []
    step("train", "--preset", "tiny", "--data", str(data), "--out", str(run), *resume)
    step("evaluate", str(run))
    print(f"report: {run / 'report.html'} (figures in {run / 'figures'}); "
          f"{time.perf_counter() - start:.0f} s in all")
