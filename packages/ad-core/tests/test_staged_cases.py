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

# Data-dependent output shapes or dtypes, and solvers that choose steps from values,
# cannot be staged (the error names the fix).
UNSTAGEABLE = {
    "indexing.getitem[mask]": "cannot be staged",
    "numpy.real_if_close[complex]": "real_if_close needs the value",
    "numpy.linalg.lstsq[overdetermined]": "lstsq's rank",
    "numpy.linalg.lstsq[square]": "lstsq's rank",
    "scipy.integrate.odeint[2,3,2,scalar]": "cannot be staged",
    "scipy.optimize.fixed_point[3,scalar]": "cannot be staged",
}
# Eagerly NumPy's (real when every eigenvalue is); staged always complex.
STAGED_COMPLEX = {"numpy.linalg.eig[real]"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_staged_case_matches_eager(case: Case) -> None:
    f = bound(case)
    if case.id in UNSTAGEABLE:
        with pytest.raises(TypeError, match=UNSTAGEABLE[case.id]):
            ad.make_graph(f, *case.args)
        return
    graph = ad.make_graph(f, *case.args)
    staged, eager = ad.tree_leaves(ad.eval_graph(graph, *case.args)), ad.tree_leaves(f(*case.args))
    assert len(staged) == len(eager) == len(graph.out_avals)
    for k, (promised, a, b) in enumerate(zip(graph.out_avals, staged, eager)):
        assert promised.shape == np.shape(b), f"output {k}: shape rule says {promised}"
        expected_dtype = np.result_type(b, 1j) if case.id in STAGED_COMPLEX else np.result_type(b)
        assert promised.dtype == expected_dtype, f"output {k}: shape rule says {promised}"
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12,
                                   err_msg=f"output {k}")
