"""One checkpoint file for all subdomains: with one subdomain it is exactly a
single-process run's checkpoint; with several, each subdomain's players and optimiser
states sit under ``subdomain_<i>`` in the same file, written atomically by ``nn.save``,
so the set is always consistent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from wengert import ad, nn

from ..errors import TrainingError
from ..pigan.training import (
    CHECKPOINT_FILE,
    RunState,
    checkpoint_tree,
    load_checkpoint,
    save_checkpoint,
    state_from_tree,
)


def save_states(out: Path, states: list[RunState]) -> Path:
    """Write every subdomain's state into the run's one checkpoint file."""
    if len(states) == 1:
        return save_checkpoint(out, states[0])
    tree = {f"subdomain_{i}": checkpoint_tree(s) for i, s in enumerate(states)}
    return nn.save(out / CHECKPOINT_FILE, ad.tree_map(np.asarray, tree))


def load_states(out: Path, likes: list[RunState]) -> list[RunState]:
    """The subdomains' states saved in ``out``, shaped like ``likes``."""
    if len(likes) == 1:
        return [load_checkpoint(out, likes[0])]
    path = out / CHECKPOINT_FILE
    if not path.is_file():
        raise TrainingError(f"{out} has no checkpoint ({CHECKPOINT_FILE} is missing); start "
                            "the run without --resume")
    like = {f"subdomain_{i}": checkpoint_tree(s) for i, s in enumerate(likes)}
    try:
        tree = nn.load(path, like)
    except Exception as exc:  # truncated, corrupted or of another decomposition
        raise TrainingError(f"cannot read the checkpoint {path} ({exc}); it is damaged or "
                            "belongs to another configuration or --decomp") from exc
    return [state_from_tree(tree[f"subdomain_{i}"], s) for i, s in enumerate(likes)]
