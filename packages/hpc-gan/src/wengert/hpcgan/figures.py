"""PNG figures of a Monte Carlo dataset: the site, one realisation, mean and spread.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas directly, so
using this module never changes the caller's pyplot backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .files import write_atomically
from .montecarlo import Dataset


def _extent(dataset: Dataset) -> list[float]:
    h = dataset.metadata["grid"]["h"]
    x, y = dataset.array("x"), dataset.array("y")
    return [x[0] - h / 2, x[-1] + h / 2, y[0] - h / 2, y[-1] + h / 2]


def _outline(ax, dataset: Dataset) -> None:
    """Polygon in grey, river in blue, inflow edges in green."""
    site = dataset.metadata["site"]
    polygon = np.array(site["polygon"])
    closed = np.vstack([polygon, polygon[:1]])
    ax.plot(closed[:, 0], closed[:, 1], color="0.3", lw=0.8)
    for edges, color, label in [(site["river_edges"], "tab:blue", "river (Dirichlet)")] + [
        (group["edges"], "tab:green", "inflow (flux)") for group in site["inflow"]
    ]:
        path = np.array([polygon[e] for e in edges] + [polygon[(edges[-1] + 1) % len(polygon)]])
        ax.plot(path[:, 0], path[:, 1], color=color, lw=3, label=label)


def _wells(ax, dataset: Dataset, kinds: tuple[str, ...]) -> None:
    style = {
        "conductivity": ("^", "white", "conductivity wells"),
        "head": ("o", "black", "head wells"),
        "pumping": ("X", "red", "pumping wells"),
    }
    for kind in kinds:
        points = np.array(dataset.metadata["wells"][kind]).reshape(-1, 2)
        marker, color, label = style[kind]
        ax.scatter(
            points[:, 0],
            points[:, 1],
            marker=marker,
            c=color,
            edgecolors="black",
            s=30,
            label=label,
            zorder=3,
        )


def _field(fig: Figure, ax, dataset: Dataset, image: np.ndarray, title: str, cmap: str) -> None:
    shown = ax.imshow(image, origin="lower", extent=_extent(dataset), cmap=cmap)
    fig.colorbar(shown, ax=ax, shrink=0.8)
    _outline(ax, dataset)
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    write_atomically(path, lambda handle: fig.savefig(handle, format="png", dpi=100,
                                                      bbox_inches="tight"))
    return path


def plot_site(dataset: Dataset, path: Path) -> Path:
    fig = Figure(figsize=(6, 4.8))
    ax = fig.add_subplot()
    ax.imshow(
        np.where(dataset.array("mask"), 0.85, 1.0),
        origin="lower",
        extent=_extent(dataset),
        cmap="gray",
        vmin=0,
        vmax=1,
    )
    _outline(ax, dataset)
    _wells(ax, dataset, ("conductivity", "head", "pumping"))
    grid = dataset.metadata["grid"]
    ax.set_title(
        f"site {dataset.metadata['preset']!r}: {grid['active_cells']} active cells on {grid['nx']} "
        f"x {grid['ny']}",
        fontsize=10,
    )
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_realization(dataset: Dataset, path: Path, index: int = 0) -> Path:
    samples = dataset.metadata["samples"]
    if not 0 <= index < samples:
        raise IndexError(
            f"realisation {index} does not exist; the dataset has {samples} (0 to {samples - 1})"
        )
    fig = Figure(figsize=(11, 4.2))
    kl = dataset.metadata["field"]["kl"]
    for k, (name, title, cmap, wells) in enumerate(
        [
            (
                "Y",
                f"Y = ln K, realisation {index} ({kl['modes']} KL modes)",
                "viridis",
                ("conductivity",),
            ),
            ("u", f"head u, realisation {index}", "coolwarm", ("head", "pumping")),
        ]
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        _field(fig, ax, dataset, dataset.array(name)[index], title, cmap)
        _wells(ax, dataset, wells)
    return _save(fig, path)


def plot_statistics(dataset: Dataset, path: Path) -> Path:
    fig = Figure(figsize=(11, 8))
    n = dataset.metadata["samples"]
    for k, name in enumerate(["Y_mean", "Y_std", "u_mean", "u_std"]):
        field, stat = name.split("_")
        _field(
            fig,
            fig.add_subplot(2, 2, k + 1),
            dataset,
            dataset.array(name),
            f"{stat} of {field} over {n} realisations",
            "viridis" if stat == "mean" else "magma",
        )
    return _save(fig, path)


def write_figures(dataset: Dataset, folder: Path, index: int = 0) -> list[Path]:
    """``site.png``, ``realization.png`` and ``statistics.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        plot_site(dataset, folder / "site.png"),
        plot_realization(dataset, folder / "realization.png", index),
        plot_statistics(dataset, folder / "statistics.png"),
    ]
