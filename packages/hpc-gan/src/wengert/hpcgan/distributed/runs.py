"""``mpiexec -n N wengert-hpcgan train``: the site PI-GAN's run set up once, on rank 0
(dataset generation, run folder), then trained by every rank.

Rank 0's set-up errors are sent to all ranks, so every rank stops with the same message
(printed once, by rank 0) instead of the others waiting for a rank that gave up.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import HpcganError, TrainingError
from ..montecarlo import load_dataset
from ..pigan.config import TrainConfig
from ..pigan.problem import site_problem
from ..pigan.runs import dataset_for, observe, run_description
from ..pigan.training import RUN_FILE, RunState, prepare_run_folder
from ..presets import Preset
from .decomposition import Decomposition, decompose, parse_decomp
from .loop import Parallel, check_layout, run_distributed
from .mpi import mpi
from .sharding import check_shards


def _stored_shards(out: Path) -> int | None:
    try:
        return int(json.loads((out / RUN_FILE).read_text())["distributed"]["data_shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def layout_description(parallel: Parallel, shards: int) -> dict[str, Any]:
    """What ``run.json`` records of the layout: what a resume must keep (the shards and the
    subdomains), not the replica count."""
    out: dict[str, Any] = {"data_shards": shards}
    if parse_decomp(parallel.decomp) != (1, 1):
        out.update(decomp=parallel.decomp, overlap=parallel.overlap,
                   interface_weight=parallel.interface_weight)
    return out


def site_decomposition(preset: Preset, parallel: Parallel | dict) -> Decomposition | None:
    """The subdomains of ``parallel.decomp`` (or of a run's recorded layout) on the site."""
    if isinstance(parallel, dict):
        decomp, overlap = parallel.get("decomp", "1x1"), parallel.get("overlap", 0)
    else:
        decomp, overlap = parallel.decomp, parallel.overlap
    p, q = parse_decomp(decomp)
    return None if (p, q) == (1, 1) else decompose(preset.site.grid, p, q, overlap)


def train_distributed(preset: Preset, config: TrainConfig, out: Path, parallel: Parallel, *,
                      data: str | os.PathLike | None, backend: str, device: str, resume: bool,
                      progress: bool) -> tuple[Path, RunState]:
    """Set the run up on rank 0, then train it on all ranks of ``COMM_WORLD``."""
    comm = mpi().COMM_WORLD
    decomposition = site_decomposition(preset, parallel)
    n_sub = len(decomposition.subdomains) if decomposition is not None else 1
    setup: tuple[Any, ...] = (None, None, None)
    dataset = None
    if comm.Get_rank() == 0:
        try:
            replicas = check_layout(parallel, comm.Get_size(), n_sub)
            shards = parallel.shards or (resume and _stored_shards(out)) or replicas
            check_shards(config, shards, replicas)
            dataset = dataset_for(preset, data, progress=progress)
            description = dict(run_description(preset, dataset, config),
                               distributed=layout_description(parallel, shards))
            prepare_run_folder(out, description, resume)
            setup = (str(dataset.folder), shards, None)
        except HpcganError as exc:
            setup = (None, None, str(exc))
    folder, shards, error = comm.bcast(setup, root=0)
    if error is not None:
        raise TrainingError(error)
    dataset = dataset or load_dataset(folder)
    problem = site_problem(preset, config.problem, pump_width=config.pump_width,
                           well_limit=config.well_limit)
    state = run_distributed(problem, observe(dataset, preset, problem), config, out,
                            parallel=replace(parallel, shards=shards), comm=comm,
                            decomposition=decomposition,
                            backend=backend, resume=resume, progress=progress, device=device)
    return out, state

