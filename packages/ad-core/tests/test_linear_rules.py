"""Linear primitives are defined by ONE transpose rule each (`def_linear`): the JVP is
the primitive itself, the VJP its transpose. Checked here directly, rule by rule, with
the dot-product test <ct, L t> = <L^T ct, t> on random tangents and cotangents, and
with the operands saved as the reverse pass saves them (shapes only where it may)."""

from __future__ import annotations

import numpy as np
import pytest

from wengert.ad.primitives import registry
from wengert.ad.primitives._helpers import linear_transposes
from wengert.ad.primitives.structural import encode_index
from wengert.ad._reverse import _shape_only

RNG = np.random.default_rng(3)


def _normal(*shape):
    return RNG.standard_normal(shape)


_SPEC, _IDX = encode_index((slice(None), np.array([2, 0, 2])))
_NWC = ("NWC", "WIO", "NWC")
# name: (operands, params); the float operands are the linear ones.
SAMPLES = {
    "reshape": ((_normal(2, 3),), dict(new_sizes=(3, 2))),
    "transpose": ((_normal(2, 3, 4),), dict(permutation=(2, 0, 1))),
    "broadcast_in_dim": ((_normal(3, 1),), dict(shape=(2, 3, 4), broadcast_dimensions=(1, 2))),
    "rev": ((_normal(2, 3),), dict(dimensions=(1,))),
    "getitem": ((_normal(2, 3), *_IDX), dict(spec=_SPEC)),
    "scatter_add": ((_normal(2, 3), _normal(2, 3), *_IDX), dict(spec=_SPEC)),
    "index_update": ((_normal(2, 3), _normal(2, 3), *_IDX), dict(spec=_SPEC)),
    "concatenate": ((_normal(2, 3), _normal(2, 1)), dict(dimension=1)),
    "pad": ((_normal(2, 3), np.float64(0.3)), dict(padding_config=((1, -1, 1), (0, 2, 0)))),
    "reduce_sum": ((_normal(2, 3, 4),), dict(axes=(0, 2))),
    "cumsum": ((_normal(2, 3),), dict(axis=1, reverse=True)),
    "take_along_axis": ((_normal(2, 3), np.array([[0, 2], [1, 1]])), dict(axis=1)),
    "dynamic_slice": ((_normal(4, 3), np.int64(1), np.int64(2)), dict(slice_sizes=(2, 2))),
    "dynamic_update_slice": ((_normal(4, 3), _normal(2, 2), np.int64(3), np.int64(0)), {}),
    "dot_general": ((_normal(2, 3, 4), _normal(2, 4, 5)),
                    dict(dimension_numbers=(((2,), (1,)), ((0,), (0,))))),
    "conv_general_dilated": ((_normal(1, 6, 2), _normal(3, 2, 4)), dict(
        window_strides=(2,), padding=((1, 1),), lhs_dilation=(1,), rhs_dilation=(2,),
        dimension_numbers=((0, 2, 1), (2, 1, 0), (0, 2, 1)), feature_group_count=1)),
}


def test_every_linear_primitive_is_defined_by_its_transpose() -> None:
    assert set(SAMPLES) <= set(linear_transposes), sorted(set(SAMPLES) - set(linear_transposes))
    assert not set(linear_transposes) - set(SAMPLES), "linear primitives without a sample here"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_vjp_is_the_transpose_of_the_jvp(name: str) -> None:
    prim = registry[name]
    args, params = SAMPLES[name]
    ans = prim.bind(*args, **params)
    saved = args if prim.keep_args else [_shape_only(a) for a in args]
    kept = ans if prim.keep_ans else None
    for i, a in enumerate(args):
        if np.result_type(a).kind != "f":  # indices and starts: not linear operands
            for rule, g in ((prim.jvps[i], np.zeros(np.shape(a))), (prim.vjps[i], ans)):
                assert rule is None or rule(g, ans, *args, **params) is None
            continue
        t = _normal(*np.shape(a))
        ct = _normal(*np.shape(ans))
        lt = prim.jvps[i](t, ans, *args, **params)
        lt_ct = prim.vjps[i](ct, kept, *saved, **params)
        assert np.shape(lt) == np.shape(ans) and np.shape(lt_ct) == np.shape(a)
        np.testing.assert_allclose(np.sum(ct * lt), np.sum(lt_ct * t), rtol=1e-12,
                                   err_msg=f"{name}, operand {i}")
