"""Tree structure is checked, not only leaf counts: dicts compare by their keys
whatever their order, and custom rules whose cotangents or tangents have another
structure than their values are refused."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp


# ---- dicts -------------------------------------------------------------------------------------
def test_dict_key_order_does_not_change_the_structure_or_the_leaf_order():
    a_leaves, a_def = ad.tree_flatten({"b": 1.0, "a": 2.0})
    b_leaves, b_def = ad.tree_flatten({"a": 2.0, "b": 1.0})
    assert a_def == b_def and hash(a_def) == hash(b_def)
    assert a_leaves == b_leaves == [2.0, 1.0]  # sorted keys, as JAX
    summed = ad.tree_map(lambda x, y: x + y, {"b": 1, "a": 2}, {"a": 10, "b": 20})
    assert summed == {"b": 21, "a": 12} and list(summed) == ["b", "a"]  # the first tree's order


def test_a_dict_mismatch_names_the_keys():
    with pytest.raises(ValueError, match=r"\{'a': \*, 'b': \*\} vs \{'a': \*, 'c': \*\}"):
        ad.tree_map(lambda x, y: x + y, {"a": 1, "b": 2}, {"a": 1, "c": 2})


def test_jvp_tangents_may_list_dict_keys_in_another_order():
    p = {"w": 2.0, "b": 3.0}
    y, dy = ad.jvp(lambda p: p["w"] * p["b"], (p,), ({"b": 1.0, "w": 0.0},))
    assert (y, dy) == (6.0, 2.0)


# ---- custom rules -------------------------------------------------------------------------------
@ad.adjoint
def scaled(p):
    def back(g):
        return ({"u": 2 * g, "v": 3 * g},)   # other keys than the argument's, same count
    return 2 * p["a"] + 3 * p["b"], back


@ad.adjoint
def scaled_right(p):
    def back(g):
        return ({"b": 3 * g, "a": 2 * g},)   # the argument's keys, in another order
    return 2 * p["a"] + 3 * p["b"], back


def test_adjoint_cotangent_with_other_dict_keys_is_refused():
    p = {"a": 1.0, "b": 1.0}
    with pytest.raises(TypeError, match=r"'u'.*'v'.*must have.*'a'.*'b'"):
        ad.gradient(scaled, p)
    assert ad.gradient(scaled_right, p) == ({"a": 2.0, "b": 3.0},)


def test_adjoint_under_checkpoint_and_jvp_checks_the_structure_too():
    p = {"a": 1.0, "b": 1.0}
    with pytest.raises(TypeError, match="structure"):
        ad.gradient(lambda p: ad.checkpoint(lambda q: scaled(q) * 1.0)(p), p)
    with pytest.raises(TypeError, match="structure"):
        ad.jvp(scaled, (p,), ({"a": 1.0, "b": 0.0},))
    staged = {"a": np.array(1.0), "b": np.array(1.0)}
    with pytest.raises(TypeError, match="structure"):
        ad.make_graph(scaled, staged)          # staging records the pullback too
    with pytest.raises(TypeError, match="structure"):
        ad.make_graph(ad.grad(scaled), staged)


def test_custom_jvp_tangent_with_another_structure_is_refused():
    @ad.custom_jvp
    def pair(x):
        return {"s": wnp.sin(x), "c": wnp.cos(x)}

    @pair.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return pair(x), {"sin": wnp.cos(x) * t, "cos": -wnp.sin(x) * t}

    with pytest.raises(TypeError, match="custom_jvp"):
        ad.jvp(pair, (0.5,), (1.0,))
    with pytest.raises(TypeError, match="custom_jvp"):
        ad.gradient(lambda x: pair(x)["s"], np.float64(0.5))
