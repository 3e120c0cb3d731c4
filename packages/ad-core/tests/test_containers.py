"""Containers in and out: gradients come back in the structure of the argument
(tuples, lists, dicts, namedtuples, dataclasses, registered classes), with
``None`` for leaves that are not differentiable."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

import wengert.ad as ad
import wengert.ad.numpy as wnp


class Params(NamedTuple):
    w: np.ndarray
    b: float


@dataclasses.dataclass
class Linear:
    w: np.ndarray
    b: np.ndarray
    name: str = "linear"
    steps: int = 0

    def __call__(self, x):
        return x @ self.w + self.b


class Pair:
    """A class registered as a tree by hand."""

    def __init__(self, first, second):
        self.first, self.second = first, second


ad.register_tree(Pair, lambda p: ([p.first, p.second], None),
                 lambda aux, children: Pair(*children))

X = np.array([[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]])
W = np.array([[0.3, -0.2, 0.1], [0.4, 0.5, -0.6]])
B = np.array([0.1, 0.0, -0.1])


def loss(w, b):
    return wnp.sum(wnp.tanh(X @ w + b) ** 2)


def reference():
    return ad.gradient(loss, W, B)


def test_tuple_list_and_dict_arguments():
    gw, gb = reference()
    (g,) = ad.gradient(lambda p: loss(*p), (W, B))
    assert type(g) is tuple
    np.testing.assert_allclose(g[0], gw)
    (g,) = ad.gradient(lambda p: loss(p[0], p[1]), [W, B])
    assert type(g) is list
    np.testing.assert_allclose(g[1], gb)
    (g,) = ad.gradient(lambda p: loss(p["w"], p["b"]), {"w": W, "b": B})
    assert type(g) is dict and list(g) == ["w", "b"]
    np.testing.assert_allclose(g["w"], gw)


def test_namedtuple_with_a_python_float_leaf():
    (g,) = ad.gradient(lambda p: loss(p.w, p.b), Params(W, 0.25))
    assert type(g) is Params
    assert type(g.b) is float
    gw, gb = ad.gradient(loss, W, 0.25)
    np.testing.assert_allclose(g.w, gw)
    assert g.b == gb


def test_dataclass_model_gives_a_dataclass_of_gradients():
    model = Linear(W, B)
    (g,) = ad.gradient(lambda m: wnp.sum(wnp.tanh(m(X)) ** 2), model)
    assert type(g) is Linear
    gw, gb = reference()
    np.testing.assert_allclose(g.w, gw)
    np.testing.assert_allclose(g.b, gb)
    assert g.name is None and g.steps is None  # not differentiable: None


def test_registered_class_and_deep_nesting():
    tree = {"layers": [Pair(W, B), Pair(W * 2, B)], "scale": (3.0, np.int64(2))}

    def f(t):
        total = 0.0
        for p in t["layers"]:
            total = total + loss(p.first, p.second)
        return total * t["scale"][0] * t["scale"][1]

    (g,) = ad.gradient(f, tree)
    assert isinstance(g["layers"][1], Pair)
    assert g["scale"][1] is None
    gw2, gb2 = ad.gradient(loss, W * 2, B)
    np.testing.assert_allclose(g["layers"][1].first, 6 * gw2)
    gw, gb = reference()
    np.testing.assert_allclose(g["layers"][0].second, 6 * gb)


def test_containers_out_of_pullback_and_jvp():
    def f(x):
        return {"sq": x * x, "parts": [x.sum(), Params(wnp.sin(x), 1.0)]}

    x = np.array([0.3, -1.2])
    y, back = ad.pullback(f, x)
    assert set(y) == {"sq", "parts"} and type(y["parts"][1]) is Params
    ct = {"sq": np.array([1.0, 0.0]), "parts": [2.0, Params(np.array([0.0, 1.0]), 0.0)]}
    (gx,) = back(ct)
    np.testing.assert_allclose(gx, [2 * 0.3 + 2.0, 2.0 + np.cos(-1.2)])
    _, dy = ad.jvp(f, (x,), (np.array([1.0, 1.0]),))
    np.testing.assert_allclose(dy["sq"], 2 * x)
    np.testing.assert_allclose(dy["parts"][1].w, np.cos(x))
