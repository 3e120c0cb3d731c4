"""The figures and the self-contained HTML page of ``wengert-hpcgan evaluate``.

Drawn on matplotlib ``Figure`` objects with the Agg canvas (the caller's pyplot backend
is never touched); every file is written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..files import write_atomically
from ..montecarlo import Dataset
from .evaluation import Fields, LoadedRun
from .runs import site_fields


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _image(run: LoadedRun, values: np.ndarray) -> np.ndarray:
    return run.preset.site.grid.to_image(values)


def _extent(run: LoadedRun) -> list[float]:
    grid = run.preset.site.grid
    x0, y0 = grid.origin
    return [x0, x0 + grid.nx * grid.h, y0, y0 + grid.ny * grid.h]


def _maps(run: LoadedRun, rows: list[tuple[str, list[tuple[str, np.ndarray]]]],
          cmap: str) -> Figure:
    ncols = max(len(r[1]) for r in rows)
    fig = Figure(figsize=(3.4 * ncols, 2.8 * len(rows)))
    for i, (label, panels) in enumerate(rows):
        shared = [np.nanmin([np.nanmin(p) for _, p in panels]),
                  np.nanmax([np.nanmax(p) for _, p in panels])]
        for j, (title, values) in enumerate(panels):
            ax = fig.add_subplot(len(rows), ncols, i * ncols + j + 1)
            shown = ax.imshow(_image(run, values), origin="lower", extent=_extent(run),
                              cmap=cmap, vmin=shared[0], vmax=shared[1])
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(shown, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def statistics_figure(run: LoadedRun, gen: Fields, ref: Fields) -> Figure:
    """Reference vs generated mean and std of Y and u."""
    return _maps(run, [(name, [("reference mean", r.mean(0)), ("PI-GAN mean", g.mean(0)),
                                ("reference std", r.std(0)), ("PI-GAN std", g.std(0))])
                       for name, g, r in (("Y", gen.Y, ref.Y), ("u", gen.u, ref.u))], "viridis")


def error_figure(run: LoadedRun, gen: Fields, ref: Fields) -> Figure:
    """Absolute errors of the generated mean and std fields."""
    return _maps(run, [(name, [("|mean error|", np.abs(g.mean(0) - r.mean(0))),
                               ("|std error|", np.abs(g.std(0) - r.std(0)))])
                       for name, g, r in (("Y", gen.Y, ref.Y), ("u", gen.u, ref.u))], "magma")


def histogram_figure(run: LoadedRun, gen: Fields, ref: Fields) -> Figure:
    """Marginals of Y and u at three validation wells (first, middle, last)."""
    grid = run.preset.site.grid
    validation = run.preset.observations.validation
    chosen = sorted({0, len(validation) // 2, len(validation) - 1})
    fig = Figure(figsize=(10, 5))
    for row, (name, g, r) in enumerate((("Y", gen.Y, ref.Y), ("u", gen.u, ref.u))):
        for col, w in enumerate(chosen):
            cell = grid.locate(validation[w : w + 1])[0]
            ax = fig.add_subplot(2, len(chosen), row * len(chosen) + col + 1)
            bins = np.histogram_bin_edges(np.concatenate([g[:, cell], r[:, cell]]), 30)
            ax.hist(r[:, cell], bins, density=True, alpha=0.5, label="Monte Carlo")
            ax.hist(g[:, cell], bins, density=True, alpha=0.5, label="PI-GAN")
            ax.set_title(f"{name} at validation well {w}", fontsize=9)
            if row == col == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_figure(run: LoadedRun) -> Figure:
    """Training curves from metrics.jsonl."""
    fig = Figure(figsize=(10, 3.2))
    rows = run.metrics
    it = [r["iteration"] for r in rows]
    for k, keys in enumerate((("wasserstein", "critic_loss"), ("adversarial",),
                              ("pde", "bc"))):
        ax = fig.add_subplot(1, 3, k + 1)
        for key in keys:
            if rows and key in rows[0]:
                ax.plot(it, [r[key] for r in rows], label=key)
        if "pde" in keys:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def site_figure(run: LoadedRun) -> Figure:
    """The site with the forward and inverse networks and the validation wells."""
    site = run.preset.site
    obs = run.preset.observations
    fig = Figure(figsize=(10, 4))
    for k, problem in enumerate(("forward", "inverse")):
        ax = fig.add_subplot(1, 2, k + 1)
        closed = np.vstack([site.polygon, site.polygon[:1]])
        ax.plot(closed[:, 0], closed[:, 1], color="0.3", lw=0.8)
        net = obs.network(problem)
        ax.scatter(*net.conductivity.T, marker="^", c="white", edgecolors="k", s=30,
                   label=f"Y wells ({len(net.conductivity)})")
        ax.scatter(*net.head.T, marker="o", c="k", s=20, label=f"u wells ({len(net.head)})")
        ax.scatter(*obs.validation.T, marker="s", c="tab:orange", s=20,
                   label=f"validation ({len(obs.validation)})")
        ax.set_title(f"{problem} problem" + (" (this run)" if problem ==
                                              run.description["config"]["problem"] else ""))
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def _table(result: dict) -> str:
    columns = [("PI-GAN", result["pigan"]),
               ("one solve, K = exp(E[Y])", result["mean_conductivity_solve"])]
    if "baseline_run" in result:
        columns.insert(1, ("compared run", result["baseline_run"]["pigan"]))
    rows = []
    for where in ("site", "validation_wells"):
        for key in ("u_mean_rel_l2", "u_std_rel_l2", "Y_mean_rms_in_sigma", "Y_std_rel_l2"):
            cells = "".join(f"<td>{_fmt(c[where].get(key))}</td>" for _, c in columns)
            rows.append(f"<tr><th>{where}: {key}</th>{cells}</tr>")
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    note = ("" if "baseline_run" in result else
            "<p>The same GAN without physics is not in this table: train it with "
            "<code>--set w_pde=0 w_bc=0</code> and pass that run to <code>evaluate "
            "--compare</code>.</p>")
    return (f"<table class='metrics'><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"
            f"{note}")


def _configuration(description: dict) -> str:
    """The run's preset, dataset, MPI layout and training configuration as a two-column
    table (nested values as JSON)."""
    shown = {"preset": description["preset"], "dataset": description["dataset"],
             **({"distributed": description["distributed"]} if "distributed" in description
                else {}), **description["config"]}
    rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_value(value))}"
                   f"</td></tr>" for key, value in shown.items())
    return f"<table class='configuration'>{rows}</table>"


def _value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}"


# What each figure shows, as its heading and alt text in report.html.
CAPTIONS = {
    "statistics": "Mean and standard deviation of Y = ln K and head u: Monte Carlo reference "
                  "and PI-GAN",
    "errors": "Absolute errors of the generated mean and standard deviation maps",
    "histograms": "Marginal distributions of Y and u at validation wells (never trained on)",
    "losses": "Training curves: critic, generator and physics losses",
    "site": "The site with its observation networks and validation wells",
}


def write_report(run: LoadedRun, reference: Dataset, gen: Fields, result: dict) -> list[Path]:
    """Write the PNG figures and ``report.html`` into the run folder; returns their paths."""
    Y, u = site_fields(reference, run.preset)
    ref = Fields(Y, u)
    figures = {"statistics": statistics_figure(run, gen, ref),
               "errors": error_figure(run, gen, ref),
               "histograms": histogram_figure(run, gen, ref),
               "losses": loss_figure(run), "site": site_figure(run)}
    folder = run.folder / "figures"
    folder.mkdir(exist_ok=True)
    written, embedded = [], []
    for name, fig in figures.items():
        data = _png(fig)
        path = folder / f"{name}.png"
        write_atomically(path, lambda handle, data=data: handle.write(data))
        written.append(path)
        embedded.append(f'<h2>{CAPTIONS[name]}</h2><img alt="{name}" '
                        f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>PI-GAN report: "
            f"{html.escape(run.preset.name)}</title><style>body{{font-family:sans-serif;"
            f"max-width:1100px;margin:auto}}td,th{{padding:2px 8px;text-align:right}}"
            f".configuration td,.configuration th{{text-align:left}}"
            f"img{{max-width:100%}}</style></head><body>"
            f"<h1>PI-GAN report: {html.escape(run.preset.name)}, "
            f"{html.escape(run.description['config']['problem'])} problem</h1>"
            f"<p>{result['samples']} generated realisations against "
            f"{result['reference_samples']} Monte Carlo realisations.</p>"
            f"{_table(result)}<p>finite-volume residual of generated fields (median "
            f"relative): {result['pigan']['fv_residual']:.3g}</p>"
            f"{''.join(embedded)}<h2>configuration</h2>{_configuration(run.description)}"
            f"</body></html>")
    path = run.folder / "report.html"
    write_atomically(path, lambda handle: handle.write(page.encode()))
    return [*written, path]
