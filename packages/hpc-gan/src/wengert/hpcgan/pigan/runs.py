"""Runs of the site PI-GAN: the dataset, the observations and the run folder of
``wengert-hpcgan train``, built on the single-process pieces (problem, steps, loop)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..montecarlo import DATASET_FILE, Dataset, load_dataset, simulate
from ..presets import Preset, load_preset
from .config import PRECISIONS, ConfigError, TrainConfig, make_config
from .problem import FlowProblem, site_problem
from .training import Observed, RunState, prepare_run_folder, run_training


def site_fields(dataset: Dataset, preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """``Y`` and ``u`` of every realisation on the active cells, ``(N, n_active)`` each."""
    mask = preset.site.grid.mask
    return dataset.array("Y")[:, mask], dataset.array("u")[:, mask]


def observe(dataset: Dataset, preset: Preset, problem: FlowProblem) -> Observed:
    """The real snapshots of ``problem``'s network: cell values at its wells."""
    Y, u = site_fields(dataset, preset)
    grid = preset.site.grid
    kc, kh = grid.locate(problem.conductivity_wells), grid.locate(problem.head_wells)
    return Observed(np.concatenate([Y[:, kc], u[:, kh]], axis=1), len(kc))


def check_dataset(dataset: Dataset, preset: Preset) -> None:
    """The dataset must be of this preset, on this grid (wells are read from its fields)."""
    meta, grid = dataset.metadata, preset.site.grid
    if meta.get("preset") != preset.name:
        raise TrainingError(f"{dataset.folder} holds a dataset of preset {meta.get('preset')!r},"
                            f" not {preset.name!r}; pass --data with a dataset of "
                            f"{preset.name!r} or omit --data to generate one")
    shape = (meta["grid"]["nx"], meta["grid"]["ny"], meta["grid"]["active_cells"])
    if shape != (grid.nx, grid.ny, grid.n_active):
        raise TrainingError(f"{dataset.folder}: its grid {shape[0]} x {shape[1]} ({shape[2]} "
                            f"cells) differs from preset {preset.name!r}'s {grid.nx} x {grid.ny}"
                            f" ({grid.n_active}); regenerate it with 'wengert-hpcgan simulate "
                            f"--preset {preset.name}'")


def dataset_for(preset: Preset, data: str | os.PathLike | None, *, progress: bool = True
                ) -> Dataset:
    """The dataset at ``data``; without ``data``, ``hpcgan-PRESET`` reused when it matches,
    generated (with the preset's sample count, seed 0) otherwise."""
    if data is not None:
        dataset = load_dataset(data)
    else:
        folder = Path(f"hpcgan-{preset.name}")
        if (folder / DATASET_FILE).is_file():
            dataset = load_dataset(folder)
        else:
            dataset = simulate(preset, folder, seed=0, progress=progress)
    check_dataset(dataset, preset)
    return dataset


def run_description(preset: Preset, dataset: Dataset, config: TrainConfig) -> dict[str, Any]:
    """What ``run.json`` records and ``--resume`` compares (a run may resume on another
    backend or device: the same model, equal to rounding)."""
    meta = dataset.metadata
    return {"preset": preset.name, "preset_definition": preset.definition,
            "dataset": {"folder": str(Path(dataset.folder).resolve()), "preset": meta["preset"],
                        "samples": meta["samples"], "seed": meta["seed"]},
            "config": config.fingerprint()}


def train(preset: str | Preset, *, data: str | os.PathLike | None = None,
          out: str | os.PathLike | None = None, problem: str | None = None,
          backend: str = "auto", steps: int | None = None, seed: int | None = None,
          device: str = "cpu", resume: bool = False, overrides: dict | None = None,
          progress: bool = True, parallel: Any = None, precision: str | None = None
          ) -> tuple[Path, RunState]:
    """Train the PI-GAN of a preset (the Python form of ``wengert-hpcgan train``); returns
    the run folder and the final state.

    The configuration is the defaults, then the preset's ``train`` section, then
    ``problem``/``steps``/``seed``/``precision``, then ``overrides`` (``--set``).
    ``precision`` (``float32``, ``float64`` or ``bf16``: bfloat16 layers on float32
    master weights) sets the ``dtype`` and ``mixed_precision`` keys.  With ``parallel``
    (a ``wengert.hpcgan.distributed.Parallel``) it trains on all MPI ranks of the job.
    """
    from .steps import resolve_backend

    preset = load_preset(preset) if isinstance(preset, str) else preset
    direct = {k: v for k, v in (("problem", problem), ("steps", steps), ("seed", seed))
              if v is not None}
    if precision is not None:
        if precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got "
                              f"{precision!r}")
        clash = {k: v for k, v in (overrides or {}).items()
                 if k in PRECISIONS[precision] and v != PRECISIONS[precision][k]}
        if clash:
            raise ConfigError(f"--precision {precision} sets "
                              f"{', '.join(f'{k}={PRECISIONS[precision][k]}' for k in clash)}, "
                              f"but --set gives {', '.join(f'{k}={v}' for k, v in clash.items())}"
                              "; give one of them")
        direct.update(PRECISIONS[precision])
    config = make_config((preset.train or {}, f"preset {preset.name} train section"),
                         (direct, "arguments"), (overrides or {}, "--set"))
    backend = resolve_backend(backend)
    if device not in ("cpu", "gpu"):
        raise TrainingError(f"--device must be cpu or gpu, got {device!r}")
    out = Path(out or f"pigan-{preset.name}-{config.problem}")
    if out.exists() and not out.is_dir():  # checked before any data is generated
        raise TrainingError(f"--out {out} exists and is not a folder; choose another --out")
    if parallel is not None:
        from ..distributed.runs import train_distributed

        return train_distributed(preset, config, out, parallel, data=data, backend=backend,
                                 device=device, resume=resume, progress=progress)
    dataset = dataset_for(preset, data, progress=progress)
    prepare_run_folder(out, run_description(preset, dataset, config), resume)
    problem_ = site_problem(preset, config.problem, pump_width=config.pump_width,
                           well_limit=config.well_limit)
    observed = observe(dataset, preset, problem_)
    mover = None
    if device == "gpu":
        from wengert import ad

        def mover(tree: Any) -> Any:
            return ad.to_device(tree, "gpu")
    state = run_training(problem_, observed, config, out, backend=backend, resume=resume,
                         progress=progress, to_device=mover)
    return out, state
