"""How good a trained PI-GAN is, measured against the Monte Carlo reference.

``evaluate`` draws realisations of the generators on the grid's cell centres and
compares their mean and standard deviation fields with the reference's, over the
whole site and at the held-out validation wells; it measures how well the generated
fields satisfy the discrete flow equation (the finite-volume residual); and it puts
the same numbers for baseline (a), one solve with ``K = exp(E[Y])``, beside them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..flow import FlowSystem
from ..montecarlo import Dataset, load_dataset
from ..presets import Preset, parse_preset
from .config import make_config
from .networks import Generators
from .problem import site_problem
from .runs import check_dataset, observe, site_fields
from .training import RUN_FILE, initial_state, load_checkpoint, read_metrics, write_json

METRICS_FILE = "metrics.json"
#: Realisations per batch when drawing fields on the grid.
_CHUNK = 64


@dataclass(frozen=True)
class Fields:
    """Realisations of ``Y`` and ``u`` on the active cells, ``(N, n_active)`` each."""

    Y: np.ndarray
    u: np.ndarray


def draw_fields(gen: Generators, points: np.ndarray, samples: int, latent_dim: int, seed: int,
                dtype: Any) -> Fields:
    """``samples`` generated realisations at ``points`` (float64 on the host)."""
    xi = np.random.default_rng(seed).standard_normal((samples, latent_dim)).astype(dtype)
    points = np.asarray(points, dtype)
    Y, u = [], []
    for s in range(0, samples, _CHUNK):
        Y.append(np.asarray(gen.Y(points, xi[s:s + _CHUNK]), np.float64))
        u.append(np.asarray(gen.u(points, xi[s:s + _CHUNK]), np.float64))
    return Fields(np.concatenate(Y), np.concatenate(u))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def compare(fields: Fields, reference: Fields, sigma_Y: float, wells: np.ndarray) -> dict:
    """Errors of the generated statistics against the reference's.

    ``u``: relative L2 errors of the mean and std fields.  ``Y``, whose mean may be 0:
    the RMS error of the mean in units of ``σ_Y`` and the relative L2 error of the std.
    At the validation wells (active indices ``wells``): the same per well, summarised.
    """
    out = {}
    for where, idx in (("site", slice(None)), ("validation_wells", wells)):
        g_Y, r_Y = fields.Y[:, idx], reference.Y[:, idx]
        g_u, r_u = fields.u[:, idx], reference.u[:, idx]
        Y_mean_gap = np.abs(g_Y.mean(0) - r_Y.mean(0)) / sigma_Y
        Y_std_ratio = np.abs(g_Y.std(0) - r_Y.std(0)) / r_Y.std(0)
        out[where] = {
            "u_mean_rel_l2": _relative(g_u.mean(0), r_u.mean(0)),
            "u_std_rel_l2": _relative(g_u.std(0), r_u.std(0)) if r_u.std(0).any() else None,
            "Y_mean_rms_in_sigma": float(np.sqrt(np.mean(Y_mean_gap**2))),
            "Y_std_rel_l2": _relative(g_Y.std(0), r_Y.std(0)),
        }
        if where == "validation_wells":
            out[where].update(Y_mean_max_in_sigma=float(Y_mean_gap.max()),
                              Y_std_max_rel=float(Y_std_ratio.max()))
    return out


def fv_residual(system: FlowSystem, fields: Fields, count: int = 100) -> float:
    """Median over realisations of ``‖A(e^Y) u − b‖ / ‖b‖``: how far generated fields are
    from solving the discrete equation the reference solves (0 for the reference)."""
    out = []
    for Y, u in zip(fields.Y[:count], fields.u[:count]):
        A, b = system.assemble(np.exp(Y))
        out.append(np.linalg.norm(A @ u - b) / np.linalg.norm(b))
    return float(np.median(out))


def mean_conductivity_baseline(system: FlowSystem, preset: Preset) -> Fields:
    """Baseline (a): one solve with ``K = exp(E[Y])`` (the prior mean), no spread."""
    Y = np.full(system.n, preset.field.mean)
    return Fields(Y[None], system.solve(np.exp(Y))[None])


@dataclass(frozen=True)
class LoadedRun:
    folder: Path
    description: dict
    preset: Preset
    generators: Generators  # or a decomposed run's StitchedGenerators
    latent_dim: int
    dtype: str
    metrics: list


def load_run(folder: str | os.PathLike) -> LoadedRun:
    """A run folder's description and its last checkpoint's generators."""
    folder = Path(folder)
    try:
        description = json.loads((folder / RUN_FILE).read_text())
    except FileNotFoundError:
        raise TrainingError(f"{folder} is not a PI-GAN run ({RUN_FILE} is missing); pass a "
                            "folder written by 'wengert-hpcgan train'") from None
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot read {folder / RUN_FILE} ({exc})") from exc
    preset = parse_preset(description["preset_definition"], description["preset"])
    config = make_config((description["config"], f"{folder / RUN_FILE} config"))
    dataset = load_dataset(description["dataset"]["folder"])
    problem = site_problem(preset, config.problem, pump_width=config.pump_width,
                           well_limit=config.well_limit)
    observed = observe(dataset, preset, problem)
    if "decomp" in description.get("distributed", {}):  # subdomains: stitched generators
        from ..distributed.stitching import load_stitched

        generators = load_stitched(folder, description["distributed"], preset, problem,
                                   observed, config)
    else:
        generators = load_checkpoint(folder, initial_state(problem, observed, config)).generators
    return LoadedRun(folder, description, preset, generators, config.latent_dim,
                     config.dtype, read_metrics(folder))


def evaluate_run(run: LoadedRun, reference: Dataset, samples: int, seed: int = 2024) -> dict:
    """Metrics of one run against ``reference`` (see the module docstring)."""
    preset = run.preset
    site, grid = preset.site, preset.site.grid
    Y_ref, u_ref = site_fields(reference, preset)
    ref = Fields(Y_ref, u_ref)
    sigma_Y = float(np.sqrt(preset.field.model.variance))
    wells = grid.locate(preset.observations.validation)
    fields = draw_fields(run.generators, grid.centres, samples, run.latent_dim, seed,
                         np.dtype(run.dtype))
    system = FlowSystem(grid, site.boundary_conditions(), site.source())
    baseline = mean_conductivity_baseline(system, preset)
    return {
        "run": str(run.folder), "samples": samples, "reference": str(reference.folder),
        "reference_samples": len(Y_ref),
        "pigan": {**compare(fields, ref, sigma_Y, wells), "fv_residual": fv_residual(system, fields)},
        "mean_conductivity_solve": compare(baseline, ref, sigma_Y, wells),
        "fields": fields,
    }


def evaluate(run_dir: str | os.PathLike, *, reference: str | os.PathLike | None = None,
             samples: int = 1000, compare_with: str | os.PathLike | None = None,
             figures: bool = True) -> dict:
    """Evaluate a run (the Python form of ``wengert-hpcgan evaluate``): writes
    ``RUN_DIR/metrics.json`` (and figures and ``report.html``) and returns the metrics."""
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 10**6:
        raise TrainingError(f"--samples must be a whole number from 1 to 1,000,000, got "
                            f"{samples!r}")
    run = load_run(run_dir)
    ref_folder = reference or run.description["dataset"]["folder"]
    ref = load_dataset(ref_folder)
    check_dataset(ref, run.preset)
    result = evaluate_run(run, ref, samples)
    other = None
    if compare_with is not None:
        other_run = load_run(compare_with)
        if other_run.preset.name != run.preset.name:
            raise TrainingError(f"--compare {compare_with} is a run of preset "
                                f"{other_run.preset.name!r}, not {run.preset.name!r}")
        other = evaluate_run(other_run, ref, samples)
        result["baseline_run"] = {k: v for k, v in other.items() if k != "fields"}
    fields = result.pop("fields")
    if other is not None:
        other.pop("fields")
    write_json(Path(run_dir) / METRICS_FILE, result)
    if figures:
        from .report import write_report

        result["figures"] = [str(p) for p in write_report(run, ref, fields, result)]
    return result
