"""Solve time of the wengert.hpcgan finite-volume solver versus grid size.

Steady flow on the unit square with a lognormal conductivity (sigma_Y = 1, correlation
length of a few percent of the domain), heads on the west and east sides, no flow
elsewhere, uniform recharge.  For each grid it times assembly plus solve with SuperLU
("direct") and with AMG-preconditioned CG ("amg", pyamg, setup included), best of a few
repeats, and prints the log-log slope of time against the number of cells: about 1 for
a solver that scales linearly.

    python benchmarks/flow_solver.py [--sizes 64 128 256 512 1024] [--direct-max 512]
"""

from __future__ import annotations

import argparse
import os
import time

# Both solvers are single-threaded; idle BLAS threads spinning beside them only slow
# pyamg down (by up to 4x on two cores), so pin BLAS to one thread before numpy loads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np
from report_rows import Row, add_json_option, write_rows
from scipy.ndimage import gaussian_filter
from wengert.hpcgan import BoundaryConditions, FlowSystem, rectangle_grid
from wengert.hpcgan.flow import pyamg_available


def problem(n: int) -> tuple[FlowSystem, np.ndarray]:
    grid = rectangle_grid(1.0, 1.0, n, n)
    noise = gaussian_filter(
        np.random.default_rng(0).standard_normal((n, n)), sigma=0.03 * n, mode="wrap"
    )
    K = np.exp(noise / noise.std()).ravel()
    faces = grid.boundary_faces
    ends = np.isin(faces.side, [0, 1])
    bc = BoundaryConditions(
        faces.cell[ends],
        np.where(faces.side[ends] == 0, 1.0, 0.0),
        np.zeros(0, dtype=int),
        np.zeros(0),
    )
    return FlowSystem(grid, bc, np.full(grid.n_active, grid.h**2)), K


def best_time(system: FlowSystem, K: np.ndarray, method: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        system.solve(K, method)
        times.append(time.perf_counter() - start)
    return min(times)


def slope(cells: list[int], times: list[float]) -> float:
    return float(np.polyfit(np.log(cells), np.log(times), 1)[0])


def report_rows(results: dict[str, tuple[list[int], list[float]]]) -> list[Row]:
    """AMG against SuperLU on the largest grid both solved, and AMG's scaling."""
    if "amg" not in results:
        return []
    (amg_cells, amg_times), (direct_cells, direct_times) = results["amg"], results["direct"]
    n = int(round(direct_cells[-1] ** 0.5))
    rows = [Row("hpc-gan", f"flow solve (assembly + solve), {n} x {n} cells, AMG-CG",
                amg_times[amg_cells.index(direct_cells[-1])], direct_times[-1],
                "SciPy SuperLU", "s")]
    if len(amg_cells) > 1:
        rows.append(Row("hpc-gan", f"AMG solve time vs cells, log-log slope up to "
                        f"{amg_cells[-1]:,} cells", slope(amg_cells, amg_times), None, "",
                        "slope", target_on="ours", notes="1 is linear in the cells"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument(
        "--direct-max", type=int, default=512, help="largest n timed with the direct solver"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="grids up to 512 x 512, one repeat (make bench)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [n for n in args.sizes if n <= 512], 1
    methods = ["direct"] + (["amg"] if pyamg_available() else [])
    results: dict[str, tuple[list[int], list[float]]] = {m: ([], []) for m in methods}
    print(
        f"{'grid':>11s} {'cells':>9s} "
        + " ".join(f"{m + ' [s]':>11s}" for m in methods)
        + f" {'amg/direct':>11s}"
    )
    for n in args.sizes:
        system, K = problem(n)
        row = {}
        for method in methods:
            if method == "direct" and n > args.direct_max:
                continue
            row[method] = best_time(system, K, method, args.repeats)
            results[method][0].append(n * n)
            results[method][1].append(row[method])
        cells = " ".join(f"{row[m]:11.4f}" if m in row else f"{'-':>11s}" for m in methods)
        ratio = f"{row['amg'] / row['direct']:11.2f}" if len(row) == 2 else f"{'-':>11s}"
        print(f"{n:5d} x {n:<5d} {n * n:9d} {cells} {ratio}")
    for method, (cells, times) in results.items():
        if len(cells) > 1:
            tail = slice(-3, None)  # the largest grids, where fixed overheads no longer dominate
            print(
                f"{method}: log-log slope of time vs cells = {slope(cells, times):.2f} overall, "
                f"{slope(cells[tail], times[tail]):.2f} over the largest three grids"
            )
    write_rows(args.json, report_rows(results))
    if not pyamg_available():
        print("pyamg is not installed: pip install 'wengert-hpcgan[amg]' to time the AMG solver")


if __name__ == "__main__":
    main()
