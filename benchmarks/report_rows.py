"""The one row schema every benchmark script emits for `make bench` (``--json PATH``).

A row is one measured comparison: our time (or memory) beside the peer's measured in
the same run, their ratio and the target that ratio should meet.  ``benchmarks/report.py``
collects the rows of every script into ``benchmarks/REPORT.md``; keeping the schema here,
in one place, is what lets the scripts stay free to print whatever tables they like.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("ad-core", "nn", "xla-backend", "hpc-gan")
TARGET_ON = ("ratio", "ours", "difference")


@dataclass
class Row:
    """One comparison.  ``ratio`` is ``ours / peer`` (> 1: we are slower or bigger).
    ``target`` is an upper bound, met when ``<quantity> <= target``, where the quantity
    (``target_on``) is the ratio (the usual case), ``ours`` itself (an absolute target
    such as "1.5 us/op", or a row without a peer) or ``ours - peer`` (a target such as
    "at most 10 us above jax.jit")."""

    package: str  # one of PACKAGES
    name: str  # the workload, as a reader would name it
    ours: float
    peer: float | None  # None: a property of ours alone (e.g. a log-log slope)
    peer_name: str  # "PyTorch eager", "jax.jit", ... ("" when there is no peer)
    unit: str  # of ``ours`` and ``peer``: "ms", "us/op", "MiB", ...
    target: float | None = None
    notes: str = ""
    target_on: str = "ratio"  # one of TARGET_ON

    def __post_init__(self) -> None:
        if self.package not in PACKAGES:
            raise ValueError(f"unknown package {self.package!r}: one of {PACKAGES}")
        if self.target_on not in TARGET_ON:
            raise ValueError(f"unknown target_on {self.target_on!r}: one of {TARGET_ON}")
        if self.peer is None and self.target_on != "ours":
            raise ValueError(f"row {self.name!r} has no peer: its target can only bound "
                             "'ours' (target_on='ours')")

    @property
    def ratio(self) -> float | None:
        return None if self.peer is None else self.ours / self.peer

    @property
    def met(self) -> bool | None:
        """Whether the target is met (``None``: the row has no target)."""
        if self.target is None:
            return None
        value = {"ratio": self.ratio, "ours": self.ours,
                 "difference": None if self.peer is None else self.ours - self.peer}
        return value[self.target_on] <= self.target


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH",
                        help="also write the results as report rows (benchmarks/report.py)")


def write_rows(path: str | None, rows: list[Row]) -> None:
    """Write ``rows`` to ``path`` as JSON; nothing when ``path`` is None (no ``--json``)."""
    if path is None:
        return
    Path(path).write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1) + "\n")


def read_rows(path: str | Path) -> list[Row]:
    return [Row(**fields) for fields in json.loads(Path(path).read_text())]
