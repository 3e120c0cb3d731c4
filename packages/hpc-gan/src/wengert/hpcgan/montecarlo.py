"""Monte Carlo reference data: draw log-conductivity fields, solve each, save a dataset.

A dataset is one folder holding ``dataset.npz`` (arrays, plus the metadata as a
``metadata.json`` member) and a readable copy of the metadata beside it.  All KL
coefficients come from one generator seeded by ``seed`` before any solve, and fields
are formed in fixed-size chunks in the parent process, so the data do not depend on
the number of worker processes.  The archive is written with fixed member timestamps,
so a rerun with the same seed gives a byte-identical file.  It is written to a
temporary file and renamed into place only when complete.

Crash safety: the archive, with the metadata inside it, is the dataset; renaming it into
place is the one step that replaces a dataset, so a folder holds the old dataset or the
new one, never a mix.  ``metadata.json`` is a convenience copy written afterwards;
`load_dataset` checks it against the archive and rewrites it when a crash left it stale.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from tqdm import tqdm

from .errors import DatasetError, SimulationError, explain_os_error
from .files import write_atomically
from .flow import FlowSystem
from .presets import Preset
from .random_field import karhunen_loeve
from .workers import exit_with_parent

DATASET_FILE = "dataset.npz"
METADATA_FILE = "metadata.json"
FORMAT = "wengert-hpcgan Monte Carlo dataset"
FORMAT_VERSION = 2  # 2: inflow weighted by the edge normal (site.boundary_conditions)
#: Realisations per unit of work; fixed so that results never depend on the worker count.
CHUNK = 16
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

ARRAY_MEANINGS = {
    "x": "(nx,) cell-centre x coordinates (scaled)",
    "y": "(ny,) cell-centre y coordinates (scaled)",
    "mask": "(ny, nx) True on active cells",
    "xi": "(N, modes) KL coefficients, independent standard normal",
    "kl_eigenvalues": "(modes,) eigenvalues of the active-cell covariance matrix",
    "Y": "(N, ny, nx) log-conductivity, NaN outside the site",
    "u": "(N, ny, nx) hydraulic head, NaN outside the site",
    "Y_mean": "(ny, nx) sample mean of Y",
    "Y_std": "(ny, nx) sample standard deviation of Y (ddof=1)",
    "u_mean": "(ny, nx) sample mean of u",
    "u_std": "(ny, nx) sample standard deviation of u (ddof=1)",
    "conductivity_wells": "(kc, 2) positions of the conductivity wells (scaled)",
    "head_wells": "(kh, 2) positions of the head wells (scaled)",
    "Y_obs": "(N, kc) Y in the cells holding the conductivity wells",
    "u_obs": "(N, kh) u in the cells holding the head wells",
}


@dataclass(frozen=True)
class Dataset:
    """A saved Monte Carlo dataset; arrays are read from disk on demand."""

    folder: Path
    metadata: dict

    def array(self, name: str) -> np.ndarray:
        path = self.folder / DATASET_FILE
        try:
            with np.load(path, allow_pickle=False) as archive:
                if name not in archive.files:
                    raise DatasetError(
                        f"{path} has no array {name!r}; it has {', '.join(archive.files)}"
                    )
                return archive[name]
        except _UNREADABLE as exc:
            raise DatasetError(_corrupt_message(path, exc)) from exc


#: What reading a damaged or truncated archive raises (a bad CRC is a BadZipFile; a
#: damaged compression-method field, zipfile's NotImplementedError).
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, NotImplementedError,
               zipfile.BadZipFile, zlib.error)


def _corrupt_message(path: Path, exc: BaseException) -> str:
    return (
        f"{path} is damaged or not a wengert-hpcgan dataset ({exc}); run 'wengert-hpcgan "
        f"simulate' again to rewrite it, or choose another folder"
    )


def _read_metadata(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(METADATA_FILE))
    except _UNREADABLE as exc:
        raise DatasetError(
            f"{path} is not a readable wengert-hpcgan dataset ({exc}); delete it or choose another "
            "folder"
        ) from exc
    if metadata.get("format") != FORMAT:
        raise DatasetError(
            f"{path} is not a wengert-hpcgan dataset; delete it or choose another folder"
        )
    return metadata


def load_dataset(folder: str | os.PathLike) -> Dataset:
    """Open the dataset that ``simulate`` wrote into ``folder``."""
    folder = Path(folder)
    if not (folder / DATASET_FILE).is_file():
        raise DatasetError(
            f"no dataset in {folder}: {DATASET_FILE} is missing; run 'wengert-hpcgan simulate "
            f"--out {folder}' first"
        )
    metadata = _read_metadata(folder / DATASET_FILE)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{folder} holds format version {metadata.get('format_version')}, this software reads "
            f"{FORMAT_VERSION}"
        )
    _refresh_metadata_copy(folder / METADATA_FILE, metadata)
    return Dataset(folder, metadata)


def _metadata_text(metadata: dict) -> bytes:
    return json.dumps(metadata, indent=2).encode()


def _refresh_metadata_copy(path: Path, metadata: dict) -> None:
    """Rewrite ``metadata.json`` when it is missing or disagrees with the archive (a writer
    killed between the two renames); a read-only folder keeps its stale copy."""
    text = _metadata_text(metadata)
    try:
        if path.read_bytes() == text:
            return
    except OSError:
        pass
    try:
        write_atomically(path, lambda handle: handle.write(text))
    except OSError:
        pass


def check_output_folder(out: Path, option: str = "--out") -> None:
    """Refuse, before any work, a folder that cannot be created or written: an existing
    file in its place, a file among its parents, or no write permission."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"output path {out} exists and is not a folder; choose another {option}")
    existing = out
    while not existing.exists():
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise DatasetError(
                f"output path {existing} is a broken symbolic link; choose another {option}"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise DatasetError(
            f"cannot create {out}: {existing} is a file, not a folder; choose another {option}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DatasetError(f"cannot write into {existing}: permission denied; choose another {option}")


def _check_target(out: Path, preset: str) -> None:
    """Refuse to overwrite a dataset of another preset (same preset: a deliberate rerun)."""
    check_output_folder(out)
    if (out / DATASET_FILE).exists():
        existing = _read_metadata(out / DATASET_FILE).get("preset")
        if existing != preset:
            raise DatasetError(
                f"{out} already holds a dataset of preset {existing!r}, not {preset!r}; "
                f"choose another --out or delete {out / DATASET_FILE} first"
            )


_worker_system: FlowSystem | None = None


def _init_worker(system: FlowSystem, parent: int) -> None:
    global _worker_system
    exit_with_parent(parent)
    _worker_system = system


def _solve_chunk(Y: np.ndarray, solver: str) -> tuple[np.ndarray, np.ndarray]:
    """In a worker: heads and relative mass imbalances for a block of log-conductivities."""
    U = np.empty_like(Y)
    imbalance = np.empty(len(Y))
    for i, y in enumerate(Y):
        K = np.exp(y)
        U[i] = _worker_system.solve(K, solver)
        imbalance[i] = _worker_system.mass_imbalance(K, U[i])
    return U, imbalance


@contextmanager
def _single_threaded_blas():
    """Let processes started inside inherit one BLAS thread each.  The pool keeps the cores
    busy, and a threaded BLAS would both slow the sparse solvers and change the rounding
    of its reductions (dot products inside CG) with the thread count."""
    saved = {name: os.environ.get(name) for name in _BLAS_THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_BLAS_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def _solve_all(
    system: FlowSystem, Y: np.ndarray, solver: str, workers: int, bar: tqdm
) -> tuple[np.ndarray, np.ndarray]:
    """Solve every field in worker processes, even when ``workers == 1``: every solve then
    runs in the same single-threaded setting, so the results cannot depend on the count."""
    U, imbalance = np.empty_like(Y), np.empty(len(Y))
    # spawn, not fork: forking a parent whose BLAS or tqdm threads are running can deadlock.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(system, os.getpid()),
    )
    try:
        with _single_threaded_blas():  # the workers are spawned while the jobs are submitted
            futures = {
                pool.submit(_solve_chunk, Y[s : s + CHUNK], solver): s
                for s in range(0, len(Y), CHUNK)
            }
        for future in as_completed(futures):
            start = futures[future]
            try:
                block, block_imbalance = future.result()
            except BrokenProcessPool as exc:
                raise SimulationError(
                    "a solver process died; no dataset was written. If it ran out of memory, "
                    "run again with fewer --workers; if simulate() was called from a script, "
                    "guard the script's top level with `if __name__ == '__main__':` "
                    "(worker processes are spawned and import the script)"
                ) from exc
            U[start : start + len(block)] = block
            imbalance[start : start + len(block)] = block_imbalance
            bar.update(len(block))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return U, imbalance


def simulate(
    preset: Preset,
    out: str | os.PathLike,
    *,
    samples: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    solver: str = "auto",
    progress: bool = True,
) -> Dataset:
    """Draw ``samples`` realisations of the preset's random field, solve each and save the
    dataset into folder ``out``; returns the saved dataset.

    ``workers`` processes solve in parallel (default: the CPUs available); the data are
    the same for any worker count.
    """
    out = Path(out)
    samples = preset.samples if samples is None else samples
    workers = workers or len(os.sched_getaffinity(0))
    for name, value, low in (("samples", samples, 1), ("seed", seed, 0), ("workers", workers, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    _check_target(out, preset.name)
    _check_memory(preset, samples)
    site, field = preset.site, preset.field
    system = FlowSystem(site.grid, site.boundary_conditions(), site.source())
    solver = system.resolve_method(solver)
    kl = karhunen_loeve(
        site.grid,
        field.model,
        mean=field.mean,
        variance_fraction=field.variance_fraction,
        max_modes=field.max_modes,
    )
    xi = np.random.default_rng(seed).standard_normal((samples, kl.n_modes))
    Y = np.concatenate([kl.sample(xi[s : s + CHUNK]) for s in range(0, samples, CHUNK)])
    with tqdm(
        total=samples, desc=f"simulate {preset.name}", unit="solve", disable=not progress
    ) as bar:
        U, imbalance = _solve_all(system, Y, solver, min(workers, -(-samples // CHUNK)), bar)

    grid = site.grid
    ddof = 1 if samples > 1 else 0
    kc, kh = grid.locate(site.wells.conductivity), grid.locate(site.wells.head)
    arrays = {
        "x": grid.x,
        "y": grid.y,
        "mask": grid.mask,
        "xi": xi,
        "kl_eigenvalues": kl.eigenvalues,
        "Y": grid.to_image(Y),
        "u": grid.to_image(U),
        "Y_mean": grid.to_image(Y.mean(axis=0)),
        "Y_std": grid.to_image(Y.std(axis=0, ddof=ddof)),
        "u_mean": grid.to_image(U.mean(axis=0)),
        "u_std": grid.to_image(U.std(axis=0, ddof=ddof)),
        "conductivity_wells": site.wells.conductivity,
        "head_wells": site.wells.head,
        "Y_obs": Y[:, kc],
        "u_obs": U[:, kh],
    }
    metadata = _metadata(preset, samples, seed, solver, kl, float(imbalance.max()))
    _write_dataset(out, arrays, metadata)
    return Dataset(out, metadata)


def _available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux), or ``None`` when unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(preset: Preset, samples: int) -> None:
    """Refuse up front a run whose arrays cannot fit in memory, instead of failing (or
    swapping) after the expensive part.  Counts the float64 arrays that live at once:
    the fields and heads on active cells and as images, and the KL coefficients."""
    grid = preset.site.grid
    modes = preset.field.max_modes or grid.n_active
    needed = 8 * samples * (2 * grid.n_active + 2 * grid.nx * grid.ny + modes)
    available = _available_memory()
    if available is not None and needed > available:
        raise SimulationError(
            f"--samples {samples} of preset {preset.name!r} needs about {needed / 2**30:.1f} GiB "
            f"of memory and {available / 2**30:.1f} GiB is available; use fewer samples "
            f"(at most about {samples * available // needed})"
        )


def _metadata(preset: Preset, samples: int, seed: int, solver: str, kl, imbalance: float) -> dict:
    from . import __version__

    site, grid = preset.site, preset.site.grid
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "preset": preset.name,
        "description": preset.description,
        "samples": samples,
        "seed": seed,
        "software": {
            "wengert-hpcgan": __version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "equation": "-div(K grad u) = f with K = exp(Y); Dirichlet head on the river, given inflow "
        "on inflow edges, no flow elsewhere",
        "coordinates": {
            "length_scale": site.length_scale,
            "offset": list(site.offset),
            "note": "scaled = (site units - offset) / length_scale",
        },
        "grid": {
            "nx": grid.nx,
            "ny": grid.ny,
            "h": grid.h,
            "origin": list(grid.origin),
            "active_cells": grid.n_active,
        },
        "site": {
            "polygon": site.polygon.tolist(),
            "river_edges": list(site.river_edges),
            "river_head": list(site.river_head),
            "inflow": [{"edges": list(edges), "flux": flux} for edges, flux in site.inflow],
            "recharge": site.recharge,
        },
        "wells": {
            "conductivity": site.wells.conductivity.tolist(),
            "head": site.wells.head.tolist(),
            "pumping": site.wells.pumping.tolist(),
            "pumping_rate": site.wells.pumping_rate.tolist(),
        },
        "field": {
            "mean": kl.mean,
            "variance": preset.field.model.variance,
            "kernels": [
                {"type": k.type, "variance": k.variance, "length": k.length}
                for k in preset.field.model.kernels
            ],
            "kl": {
                "method": kl.method,
                "modes": kl.n_modes,
                "retained_variance_fraction": kl.retained_fraction,
                "requested_variance_fraction": kl.requested_fraction,
                "max_modes": preset.field.max_modes,
            },
        },
        "solver": {"method": solver, "max_relative_mass_imbalance": imbalance},
        "arrays": ARRAY_MEANINGS,
        "preset_definition": preset.definition,
    }


def _write_dataset(out: Path, arrays: dict[str, np.ndarray], metadata: dict) -> None:

    def write_archive(handle) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in arrays.items():
                with archive.open(
                    zipfile.ZipInfo(f"{name}.npy", _ZIP_EPOCH), "w", force_zip64=True
                ) as member:
                    np.lib.format.write_array(
                        member, np.ascontiguousarray(value), allow_pickle=False
                    )
            archive.writestr(zipfile.ZipInfo(METADATA_FILE, _ZIP_EPOCH), _metadata_text(metadata))

    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomically(out / DATASET_FILE, write_archive)
    except OSError as exc:
        raise DatasetError(
            f"could not write the dataset into {out} ({explain_os_error(exc)}); the folder "
            "still holds its previous dataset, if it had one"
        ) from exc
    # From the archive now in place: a concurrent writer's rename may have replaced ours.
    _refresh_metadata_copy(out / METADATA_FILE, _read_metadata(out / DATASET_FILE))
