"""conv_general_dilated, reduce_window_{sum,max} and the select-and-scatter pair:
values against direct loop references, shape rules against the implementations,
derivatives to second order against finite differences, staging round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from wengert import ad
from wengert.ad import lax
from wengert.ad.primitives import registry
from wengert.ad.testing import check_grads

rng = np.random.default_rng(42)


def _dilate_and_pad(x, lhs_dilation, padding, value=0.0):
    """NHWC-style: zeros between pixels of the spatial axes 1..n, then (lo, hi) pads."""
    n_sp = x.ndim - 2
    shape = [x.shape[0]] + [(x.shape[1 + i] - 1) * lhs_dilation[i] + 1 for i in range(n_sp)] + \
        [x.shape[-1]]
    out = np.zeros(shape, x.dtype)
    out[(slice(None),) + tuple(slice(None, None, d) for d in lhs_dilation)] = x
    grow = [(0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in padding] + [(0, 0)]
    out = np.pad(out, grow, constant_values=value)
    crop = (slice(None),) + tuple(slice(-min(lo, 0), out.shape[1 + i] + min(hi, 0))
                                  for i, (lo, hi) in enumerate(padding))
    return out[crop]


def reference_conv(x, w, strides, padding, lhs_dilation, rhs_dilation, groups):
    """Channels-last convolution by explicit loops over output pixels and taps."""
    xp = _dilate_and_pad(x, lhs_dilation, padding)
    n_sp = x.ndim - 2
    kernel, (i_per_group, o) = w.shape[:n_sp], w.shape[n_sp:]
    o_per_group = o // groups
    out_sizes = [(xp.shape[1 + d] - ((kernel[d] - 1) * rhs_dilation[d] + 1)) // strides[d] + 1
                 for d in range(n_sp)]
    y = np.zeros((x.shape[0], *out_sizes, o))
    for pos in itertools.product(*map(range, out_sizes)):
        for tap in itertools.product(*map(range, kernel)):
            src = tuple(p * s + t * r for p, s, t, r in zip(pos, strides, tap, rhs_dilation))
            pixel = xp[(slice(None),) + src]  # (N, C)
            for g in range(groups):
                cin = pixel[:, g * i_per_group:(g + 1) * i_per_group]
                cols = slice(g * o_per_group, (g + 1) * o_per_group)
                y[(slice(None),) + pos + (cols,)] += cin @ w[tap + (slice(None), cols)]
    return y


def reference_pool(x, window, strides, padding, reduce, pad_value):
    xp = np.pad(x, padding, constant_values=pad_value)
    sizes = [(n - k) // s + 1 for n, k, s in zip(xp.shape, window, strides)]
    y = np.empty(sizes)
    for pos in itertools.product(*map(range, sizes)):
        y[pos] = reduce(xp[tuple(slice(p * s, p * s + k) for p, s, k in
                                 zip(pos, strides, window))])
    return y


CONV_CASES = [
    {"window_strides": (1, 1), "padding": ((0, 0), (0, 0))},
    {"window_strides": (2, 1), "padding": ((1, 2), (0, 1))},
    {"window_strides": (1, 2), "padding": ((2, -1), (1, 1)), "rhs_dilation": (2, 1)},
    {"window_strides": (2, 2), "padding": ((1, 1), (1, 1)), "lhs_dilation": (2, 3)},
    {"window_strides": (1, 1), "padding": ((1, 1), (0, 1)), "feature_group_count": 2},
    {"window_strides": (2, 3), "padding": ((1, 0), (2, 1)), "lhs_dilation": (1, 2),
         "rhs_dilation": (2, 1), "feature_group_count": 2},
    {"window_strides": (1, 1), "padding": ((1, 1), (1, 1)), "feature_group_count": 4},  # depthwise
    # transposed convolutions (unit stride, dilated input): the zero-free scatter path,
    # with crops (negative padding) and a dilated kernel
    {"window_strides": (1, 1), "padding": ((2, -1), (1, 3)), "lhs_dilation": (2, 3),
     "rhs_dilation": (1, 2)},
    {"window_strides": (1, 1), "padding": ((0, 0), (2, 2)), "lhs_dilation": (3, 2)},
]


def _conv_operands(case, dtype=np.float64):
    g = case.get("feature_group_count", 1)
    x = rng.standard_normal((2, 5, 6, 4)).astype(dtype)
    w = rng.standard_normal((3, 2, 4 // g, 4)).astype(dtype)
    return x, w


def _full(case, n_sp=2):
    return (case["window_strides"], case["padding"], case.get("lhs_dilation", (1,) * n_sp),
            case.get("rhs_dilation", (1,) * n_sp), case.get("feature_group_count", 1))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_loop_reference(case):
    x, w = _conv_operands(case)
    np.testing.assert_allclose(lax.conv_general_dilated(x, w, **case),
                               reference_conv(x, w, *_full(case)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_derivatives_second_order(case):
    x, w = _conv_operands(case)
    check_grads(lambda x, w: lax.conv_general_dilated(x, w, **case), (x, w), order=2)


def test_conv_1d_and_3d():
    x1, w1 = rng.standard_normal((2, 7, 3)), rng.standard_normal((3, 3, 2))
    np.testing.assert_allclose(lax.conv_general_dilated(x1, w1, 2, ((1, 1),)),
                               reference_conv(x1, w1, (2,), ((1, 1),), (1,), (1,), 1))
    check_grads(lambda x, w: lax.conv_general_dilated(x, w, 2, ((1, 1),)), (x1, w1), order=2)
    x3, w3 = rng.standard_normal((1, 4, 3, 5, 2)), rng.standard_normal((2, 2, 3, 2, 3))
    args = ((1, 2, 1), "SAME")
    pads = lax.padtype_to_pads((4, 3, 5), (2, 2, 3), (1, 2, 1), "SAME")
    np.testing.assert_allclose(lax.conv_general_dilated(x3, w3, *args),
                               reference_conv(x3, w3, (1, 2, 1), pads, (1,) * 3, (1,) * 3, 1))
    check_grads(lambda x, w: lax.conv_general_dilated(x, w, *args), (x3, w3), order=2)


def test_conv_other_layouts_agree_with_channels_last():
    x, w = rng.standard_normal((2, 5, 6, 4)), rng.standard_normal((3, 2, 4, 3))
    nhwc = lax.conv_general_dilated(x, w, (2, 1), "SAME", rhs_dilation=(1, 2))
    nchw = lax.conv_general_dilated(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), (2, 1),
                                    "SAME", rhs_dilation=(1, 2),
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"))
    np.testing.assert_allclose(nchw, nhwc.transpose(0, 3, 1, 2), rtol=1e-12)
    check_grads(lambda x, w: lax.conv_general_dilated(
        x, w, (2, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NHWC")),
        (x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)), order=2)


# Geometries for the three implementation paths (patch matrix, input-side scatter, one
# GEMM per output pixel): one input channel, a transposed (non-contiguous) operand as a
# kernel derivative passes, a large kernel over a dilated input with few outputs.
PATH_CASES = [
    ((3, 9, 8, 1), (3, 2, 1, 4), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),
    ((3, 9, 8, 1), (3, 2, 1, 4), (2, 1), ((1, 0), (0, 1)), (1, 1), (1, 2)),
    ((3, 7, 6, 5), (3, 3, 5, 2), (1, 1), ((2, 2), (1, 2)), (1, 1), (1, 1)),
    ((2, 4, 5, 3), (7, 8, 3, 2), (1, 1), ((2, 1), (2, 3)), (2, 2), (1, 1)),
    ((2, 4, 5, 3), (6, 5, 3, 2), (2, 1), ((1, 1), (3, -1)), (2, 3), (1, 2)),
]


@pytest.mark.parametrize("case", PATH_CASES)
@pytest.mark.parametrize("transposed", [False, True])
def test_every_convolution_path_matches_the_loop_reference(case, transposed):
    from wengert.ad.primitives import convolution as conv

    x_shape, w_shape, strides, padding, lhs_dil, rhs_dil = case
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    if transposed:  # same values, memory in the opposite axis order
        x = np.ascontiguousarray(x.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
        w = np.ascontiguousarray(w.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    want = reference_conv(x, w, strides, padding, lhs_dil, rhs_dil, 1)
    got = conv._im2col_conv(x, w, strides, padding, lhs_dil, rhs_dil, 1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    got = conv._window_conv(x, w, strides, padding, lhs_dil, rhs_dil)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if strides == (1, 1):
        got = conv._scatter_conv(x, w, padding, lhs_dil, rhs_dil)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_each_path_is_chosen_where_it_saves_the_most():
    """DCGAN's shapes: the kernel derivative of a stride-2 transposed convolution
    (batch as channels, a 32x32 cotangent as kernel over a dilated input) takes the
    per-pixel path; the transposed convolution itself the scatter path; a plain
    3x3 convolution the patch matrix."""
    from wengert.ad.primitives import convolution as conv

    pads = ((2, 2), (2, 2))
    assert conv._algorithm((32, 16, 16, 32), (32, 32, 32, 3), (1, 1), pads, (2, 2),
                           (1, 1)) is conv._window_conv
    assert conv._algorithm((32, 16, 16, 32), (4, 4, 32, 3), (1, 1), pads, (2, 2),
                           (1, 1)) is conv._scatter_conv
    assert conv._algorithm((32, 16, 16, 64), (3, 3, 64, 64), (1, 1), ((1, 1), (1, 1)), (1, 1),
                           (1, 1)) is conv._im2col_conv


def test_small_convolutions_take_the_patch_matrix():
    """The scatter path pays about 15 microseconds of Python per tap: for the
    digits CNN's 3x3 input derivatives and a 1x1 kernel it was 1.3-6x slower."""
    from wengert.ad.primitives import convolution as conv

    same = ((1, 1), (1, 1))
    assert conv._algorithm((32, 4, 4, 32), (3, 3, 32, 16), (1, 1), same, (1, 1),
                           (1, 1)) is conv._im2col_conv
    assert conv._algorithm((128, 4, 4, 32), (1, 1, 32, 1), (1, 1), ((0, 0), (0, 0)), (1, 1),
                           (1, 1)) is conv._im2col_conv


@pytest.mark.parametrize("channels", [1, 3, 16])
def test_a_contiguous_input_gives_a_contiguous_output(channels):
    """With one input channel the patch copy runs taps by pixels; the GEMM must
    still write pixels by features, or every op after the convolution (bias,
    ReLU, pooling and their derivatives) runs over channel-major strides
    (the digits CNN's 1.5x slowdown)."""
    x = rng.standard_normal((8, 8, 8, channels)).astype(np.float32)
    w = rng.standard_normal((3, 3, channels, 16)).astype(np.float32)
    y = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert y.flags.c_contiguous
    want = reference_conv(x.astype(np.float64), w.astype(np.float64), (1, 1),
                          ((1, 1), (1, 1)), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_same_padding_keeps_size_and_puts_the_extra_pixel_last():
    assert lax.padtype_to_pads((8, 7), (3, 4), (1, 1), "SAME") == ((1, 1), (1, 2))
    assert lax.padtype_to_pads((7,), (3,), (2,), "SAME") == ((1, 1),)
    x, w = rng.standard_normal((1, 8, 7, 2)), rng.standard_normal((3, 4, 2, 5))
    assert lax.conv_general_dilated(x, w, padding="SAME").shape == (1, 8, 7, 5)


def test_float32_stays_float32():
    x, w = _conv_operands(CONV_CASES[1], np.float32)
    y, (gx, gw) = ad.value_and_grad(
        lambda x, w: lax.conv_general_dilated(x, w, **CONV_CASES[1]).sum(), (0, 1))(x, w)
    assert y.dtype == gx.dtype == gw.dtype == np.float32


def test_conv_rejects_inconsistent_features():
    with pytest.raises(TypeError, match="feature_group_count"):
        ad.make_graph(lambda x, w: lax.conv_general_dilated(x, w, feature_group_count=2),
                      np.zeros((1, 4, 4, 3)), np.zeros((1, 1, 2, 4)))
    for groups, kernel in ((1, (1, 1, 2, 4)), (3, (1, 1, 3, 6))):  # eager: same message
        with pytest.raises(TypeError, match="input features 6 must equal kernel input"):
            lax.conv_general_dilated(np.zeros((2, 3, 3, 6)), np.zeros(kernel),
                                     feature_group_count=groups)
    with pytest.raises(ValueError, match="spatial letters"):
        lax.conv_dimension_numbers("NHWC", "HWXO", "NHWC")


def test_strides_and_dilations_below_one_are_rejected_by_name():
    x, w = np.zeros((1, 4, 4, 2)), np.zeros((2, 2, 2, 3))
    with pytest.raises(ValueError, match=r"window_strides must be >= 1 .*\(1, 0\)"):
        lax.conv_general_dilated(x, w, (1, 0))
    with pytest.raises(ValueError, match="rhs_dilation must be >= 1"):
        lax.conv_general_dilated(x, w, rhs_dilation=0)
    with pytest.raises(ValueError, match="window_strides must be >= 1"):
        lax.reduce_window_max(x, (1, 2, 2, 1), (1, 0, 2, 1))


POOL_CASES = [
    {"window_dimensions": (1, 2, 2, 1), "window_strides": (1, 2, 2, 1)},
    {"window_dimensions": (1, 3, 3, 1), "window_strides": (1, 1, 2, 1),
         "padding": ((0, 0), (1, 1), (1, 0), (0, 0))},
    {"window_dimensions": (1, 3, 2, 1), "window_strides": (1, 2, 2, 1), "padding": "SAME"},
    {"window_dimensions": (2, 1, 1, 3), "window_strides": (1, 1, 1, 1)},
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_matches_loop_reference(case):
    x = rng.standard_normal((2, 5, 7, 3))
    shape = x.shape
    window, strides = case["window_dimensions"], case["window_strides"]
    pads = lax.padtype_to_pads(shape, window, strides, case.get("padding", "VALID"))
    np.testing.assert_allclose(lax.reduce_window_sum(x, **case),
                               reference_pool(x, window, strides, pads, np.sum, 0.0))
    np.testing.assert_array_equal(lax.reduce_window_max(x, **case),
                                  reference_pool(x, window, strides, pads, np.max, -np.inf))


@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_derivatives_second_order(case):
    x = rng.standard_normal((2, 5, 7, 3))  # distinct values: no ties for finite differences
    check_grads(lambda x: lax.reduce_window_sum(x, **case), (x,), order=2)
    check_grads(lambda x: lax.reduce_window_max(x, **case), (x,), order=2)


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 0.0, 3.0, -1.0]]).reshape(1, 2, 4, 1)
    (g,) = ad.gradient(lambda x: lax.reduce_window_max(x, (1, 2, 2, 1), (1, 2, 2, 1)).sum(), x)
    expected = np.array([[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(g, expected)



def test_max_pool_ties_and_nans_with_overlapping_padded_windows():
    # Windows [-inf,0,0], [0,0,2], [0,2,2], [2,2,-inf] and [nan,3,nan]-style rows:
    # each window's derivative goes to its first maximum, a NaN counting as one.
    x = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, np.nan, 3.0, np.nan]]).reshape(1, 2, 4, 1)
    window = (1, 1, 3, 1)
    (g,) = ad.gradient(lambda x: lax.reduce_window_max(x, window, (1, 1, 1, 1),
                                                       ((0, 0), (0, 0), (1, 1), (0, 0))).sum(), x)
    expected = np.array([[1.0, 0.0, 3.0, 0.0], [0.0, 3.0, 0.0, 1.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(g, expected)

def _first_max_reference(x, window):
    """Per disjoint window (stride = window, no padding), the flat index of its
    first maximum (a NaN counting as the maximum), by explicit loops."""
    out = tuple(n // k for n, k in zip(x.shape, window))
    where = {}
    for o in np.ndindex(*out):
        best = None
        for k in np.ndindex(*window):
            i = tuple(a * w + b for a, w, b in zip(o, window, k))
            v = x[i]
            if best is None or (not np.isnan(x[best]) and (np.isnan(v) or v > x[best])):
                best = i
        where[o] = best
    return where


@pytest.mark.parametrize("shape", [(2, 6, 8, 3), (2, 5, 7, 3), (3, 4, 4, 1)])
@pytest.mark.parametrize("source_kind", ["finite", "inf"])
def test_disjoint_max_pool_derivatives_route_to_the_first_maximum(shape, source_kind):
    """Disjoint windows take contiguous blocks: ties (a ReLU's zeros), NaN, a
    remainder the windows do not cover, and a non-finite cotangent."""
    x = np.maximum(rng.standard_normal(shape), 0.0)  # many tied zeros
    x.flat[5] = np.nan
    window = (1, 2, 2, 1)
    params = {"window_dimensions": window, "window_strides": window,
              "padding": ((0, 0),) * 4}
    where = _first_max_reference(x, window)
    pooled = registry["reduce_window_max"].bind(x, **params)
    source = rng.standard_normal(pooled.shape)
    if source_kind == "inf":
        source.flat[3] = np.inf
    want = np.zeros(shape)
    gathered_want = np.zeros(pooled.shape)
    t = rng.standard_normal(shape)
    for o, i in where.items():
        want[i] += source[o]
        gathered_want[o] = t[i]
        assert np.isnan(pooled[o]) if np.isnan(x[i]) else pooled[o] == x[i]
    got = registry["select_and_scatter_add"].bind(source, x, **params)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(registry["select_and_gather_add"].bind(t, x, **params),
                                  gathered_want)


def test_select_and_scatter_pair_are_transposes():
    p = registry
    x = rng.standard_normal((2, 6, 5, 2))
    params = {"window_dimensions": (1, 3, 2, 1), "window_strides": (1, 2, 1, 1),
                  "padding": ((0, 0), (1, 1), (0, 1), (0, 0))}
    t = rng.standard_normal(x.shape)
    gathered = p["select_and_gather_add"].bind(t, x, **params)
    s = rng.standard_normal(gathered.shape)
    scattered = p["select_and_scatter_add"].bind(s, x, **params)
    np.testing.assert_allclose(np.sum(gathered * s), np.sum(scattered * t), rtol=1e-12)
    for name in ("select_and_gather_add", "select_and_scatter_add"):
        arg = t if name == "select_and_gather_add" else s
        check_grads(lambda a, name=name: p[name].bind(a, x, **params), (arg,), order=2)


def test_reduce_window_generic_entry_point():
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(lax.reduce_window(x, 0.0, np.add, (2, 2), (1, 2)),
                                  lax.reduce_window_sum(x, (2, 2), (1, 2)))
    np.testing.assert_array_equal(lax.reduce_window(x, -np.inf, "max", (2, 2)),
                                  lax.reduce_window_max(x, (2, 2)))
    with pytest.raises(ValueError, match="identity"):
        lax.reduce_window(x, 1.0, np.add, (2, 2))
    with pytest.raises(NotImplementedError, match="min is -max"):
        lax.reduce_window(x, np.inf, np.minimum, (2, 2))


def test_shape_rules_match_implementations():
    for case in CONV_CASES:
        x, w = _conv_operands(case)
        graph = ad.make_graph(lambda x, w, case=case: lax.conv_general_dilated(x, w, **case),
                              x, w)
        np.testing.assert_allclose(ad.eval_graph(graph, x, w),
                                   lax.conv_general_dilated(x, w, **case))
    for case in POOL_CASES:
        x = rng.standard_normal((2, 5, 7, 3))
        def f(x, case=case):
            return lax.reduce_window_max(x, **case), lax.reduce_window_sum(x, **case)

        for got, want in zip(ad.eval_graph(ad.make_graph(f, x), x), f(x)):
            np.testing.assert_allclose(got, want)


def test_staged_gradient_equals_eager_gradient():
    x, w = _conv_operands(CONV_CASES[5])

    def loss(x, w):
        y = lax.conv_general_dilated(x, w, **CONV_CASES[5])
        return lax.reduce_window_max(y, (1, 2, 2, 1), (1, 1, 1, 1), "SAME").sum()

    grads = lambda x, w: ad.gradient(loss, x, w)
    staged = ad.eval_graph(ad.make_graph(grads, x, w), x, w)
    for got, want in zip(ad.tree_leaves(staged), grads(x, w)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_dot_general_is_reexported():
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))), a @ b)
