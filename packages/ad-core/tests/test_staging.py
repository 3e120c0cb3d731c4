"""Staging to the IR: graphs are typed, readable, immutable and hashable;
staging grad(f) gives forward and backward in one graph; DCE and CSE;
Python control flow on staged values is an error that names the line;
eval_graph is differentiable and composes with every transformation."""

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
from wengert.ad import ir
from wengert.ad.errors import ConcretizationError
from wengert.ad.primitives.elementwise import add_p, mul_p, sin_p

X = np.array([0.5, -1.0, 2.0])


def f(x, w):
    return wnp.sum(wnp.tanh(x * w) ** 2)


def test_graph_has_typed_inputs_equations_outputs_and_lifted_constants():
    c = np.arange(3.0)
    graph = ad.make_graph(lambda x: wnp.sin(x) * c + 1.0, X)
    assert graph.in_avals == (ad.primitives.Aval((3,), np.float64),)
    assert graph.out_avals == (ad.primitives.Aval((3,), np.float64),)
    assert [e.prim.name for e in graph.eqns] == ["sin", "mul", "add"]
    assert len(graph.consts) == 1 and graph.consts[0] is c
    text = str(graph)
    lines = text.splitlines()
    assert lines[0] == "graph(a:float64[3]) consts(b:float64[3]):"
    assert lines[1].strip() == "c:float64[3] = sin(a)" and lines[-1].strip() == "return (e)"
    assert len(lines) == 2 + len(graph.eqns)


def test_graphs_are_immutable_and_hash_structurally():
    g1, g2 = ad.make_graph(f, X, X), ad.make_graph(f, X, X)
    assert g1 == g2 and hash(g1) == hash(g2)          # fresh variables, same structure
    assert ad.make_graph(f, X[:2], X[:2]) != g1       # other shapes
    assert ad.make_graph(lambda x, w: wnp.sum(wnp.tanh(x + w) ** 2), X, X) != g1
    with pytest.raises(AttributeError):
        g1.eqns = ()
    cache = {g1: "compiled"}
    assert cache[g2] == "compiled"
    loops = [ad.make_graph(lambda x: ad.while_loop(lambda c: c < 9, lambda c: c * 2, x),
                           np.array(0.5)) for _ in range(2)]
    assert loops[0] == loops[1] and hash(loops[0]) == hash(loops[1])
    assert loops[0].eqns[0].prim.name == "while"


def test_staging_grad_gives_forward_and_backward_in_one_graph():
    graph = ad.make_graph(ad.grad(f, argnums=(0, 1)), X, X)
    names = [e.prim.name for e in graph.eqns]
    assert "tanh" in names and names.count("mul") >= 3
    gx, gw = ad.eval_graph(graph, X, 2 * X)
    ex, ew = ad.gradient(f, X, 2 * X)
    np.testing.assert_allclose(gx, ex, rtol=1e-14)
    np.testing.assert_allclose(gw, ew, rtol=1e-14)


def test_dead_code_elimination():
    a, b = ir.Var(ad.primitives.Aval((), np.float64)), ir.Var(ad.primitives.Aval((), np.float64))
    used, unused, out = (ir.Var(a.aval) for _ in range(3))
    graph = ir.Graph([a], [], [], [ir.Eqn(sin_p, (a,), (unused,)),
                                   ir.Eqn(mul_p, (a, a), (used,)),
                                   ir.Eqn(add_p, (used, ir.Literal(1.0)), (out,))], [out])
    pruned = ir.dead_code_elimination(graph)
    assert [e.prim.name for e in pruned.eqns] == ["mul", "add"]
    assert ad.eval_graph(pruned, np.array(3.0)) == [10.0]
    staged = ad.make_graph(lambda x: (wnp.cos(x), wnp.sin(x))[1], X)
    assert [e.prim.name for e in staged.eqns] == ["sin"]
    del b


def test_common_subexpression_elimination():
    graph = ad.make_graph(lambda x: wnp.sin(x * 2.0) + wnp.sin(x * 2.0), X, simplify=False)
    assert [e.prim.name for e in graph.eqns] == ["mul", "sin", "mul", "sin", "add"]
    cse = ir.common_subexpression_elimination(graph)
    assert [e.prim.name for e in cse.eqns] == ["mul", "sin", "add"]
    add = cse.eqns[-1]
    assert add.inputs[0] is add.inputs[1]
    np.testing.assert_allclose(ad.eval_graph(cse, X), 2 * np.sin(2 * X))
    assert [e.prim.name for e in ir.simplify(graph).eqns] == ["mul", "sin", "add"]


def test_python_control_flow_on_staged_values_names_the_line_and_the_fix():
    def branchy(x):
        if wnp.sum(x) > 0:   # the offending line
            return x
        return -x

    with pytest.raises(ConcretizationError) as info:
        ad.make_graph(branchy, X)
    message = str(info.value)
    assert "test_staging.py" in message and "if wnp.sum(x) > 0" in message
    assert "wengert.ad.cond" in message and "while_loop" in message
    with pytest.raises(ConcretizationError, match="cond"):   # also under a transformation
        ad.make_graph(ad.grad(lambda x: wnp.sum(branchy(x))), X)
    ok = ad.make_graph(lambda x: ad.cond(wnp.sum(x) > 0, lambda: x, lambda: -x), X)
    np.testing.assert_allclose(ad.eval_graph(ok, -X), X)


def test_eval_graph_composes_with_every_transformation():
    graph = ad.make_graph(f, X, X)
    run = lambda x, w: ad.eval_graph(graph, x, w)  # noqa: E731
    w = np.array([0.3, 0.1, -0.2])
    np.testing.assert_allclose(ad.grad(run)(X, w), ad.grad(f)(X, w), rtol=1e-14)
    np.testing.assert_allclose(ad.hessian(lambda x: run(x, w), X),
                               ad.hessian(lambda x: f(x, w), X), rtol=1e-12)
    np.testing.assert_allclose(ad.jvp(run, (X, w), (w, X))[1],
                               ad.jvp(f, (X, w), (w, X))[1], rtol=1e-14)
    restaged = ad.make_graph(ad.grad(run), X, w)       # a graph of a graph, differentiated
    np.testing.assert_allclose(ad.eval_graph(restaged, X, w), ad.grad(f)(X, w), rtol=1e-14)


def test_sub_graphs_of_control_flow_are_printed_inside_their_equation():
    graph = ad.make_graph(lambda x: ad.scan(lambda c, r: (c + r * x, c), 0.0, X)[1],
                          np.array(0.5))
    text = str(graph)
    assert "scan(" in text and "body_graph=" in text and "length=3" in text
    assert graph.eqns[0].params["body_graph"].in_avals[0] == graph.in_avals[0]
    assert {p.name for p in graph.primitives()} >= {"scan", "mul", "add"}
