"""The gradient cases staged: `make_graph` runs every primitive's shape rule instead
of its implementation, so a graph that evaluates (`eval_graph`) to the eager
values, with the output shapes and dtypes the graph promised, means the shape
rules agree with the implementations that `wengert.xla` will replace."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad

from gradient_cases import CASES, Case
from adcore_support import bound

# Data-dependent output shapes cannot be staged (the error names the fix).
UNSTAGEABLE = {"indexing.getitem[mask]"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_staged_case_matches_eager(case: Case) -> None:
    f = bound(case)
    if case.id in UNSTAGEABLE:
        with pytest.raises(TypeError, match="cannot be staged"):
            ad.make_graph(f, *case.args)
        return
    graph = ad.make_graph(f, *case.args)
    staged, eager = ad.tree_leaves(ad.eval_graph(graph, *case.args)), ad.tree_leaves(f(*case.args))
    assert len(staged) == len(eager) == len(graph.out_avals)
    for k, (promised, a, b) in enumerate(zip(graph.out_avals, staged, eager)):
        assert promised.shape == np.shape(b), f"output {k}: shape rule says {promised}"
        assert promised.dtype == np.result_type(b), f"output {k}: shape rule says {promised}"
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12,
                                   err_msg=f"output {k}")
