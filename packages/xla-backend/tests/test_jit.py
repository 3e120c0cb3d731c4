"""`xla.jit` / `xla.lower`: caching per signature, static and donated arguments,
devices, dtypes (no silent float64 downcast), trees, and the compiled object."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import wengert.ad as ad
import wengert.ad.numpy as wnp
import wengert.xla as xla


def mlp(params, x):
    h = wnp.tanh(x @ params["w1"] + params["b1"])
    return wnp.sum((h @ params["w2"]) ** 2)


def _params(dtype=np.float64):
    rng = np.random.default_rng(0)
    return {"w1": rng.standard_normal((4, 8)).astype(dtype), "b1": np.zeros(8, dtype),
            "w2": rng.standard_normal((8, 2)).astype(dtype)}


def test_stages_once_per_signature():
    calls = []

    def f(x, scale):
        calls.append(1)
        return x * scale

    jf = xla.jit(f)
    x = np.ones(3)
    jf(x, 2.0), jf(x + 1, 2.0)
    assert len(calls) == 1
    jf(np.ones(4), 2.0)            # new shape
    jf(x.astype(np.float32), 2.0)  # new dtype
    jf(x, 3.0)                     # Python numbers are traced: no new program
    assert len(calls) == 3
    np.testing.assert_array_equal(np.asarray(jf(x, 3.0)), 3 * x)
    js = xla.jit(f, static_argnums=1)
    js(x, 2.0), js(x, 3.0)         # static: one program per value
    assert len(calls) == 5
    np.testing.assert_array_equal(np.asarray(js(x, 3.0)), 3 * x)


def test_outputs_stay_on_device_and_feed_back():
    step = xla.jit(lambda p, x: ad.tree_map(lambda w, g: w - 0.1 * g, p,
                                            ad.grad(mlp)(p, x)))
    params, x = _params(), np.random.default_rng(1).standard_normal((5, 4))
    eager = params
    for _ in range(3):
        params = step(params, x)
        eager = ad.tree_map(lambda w, g: w - 0.1 * g, eager, ad.grad(mlp)(eager, x))
    assert all(isinstance(v, jax.Array) for v in params.values())
    for k in eager:
        np.testing.assert_allclose(np.asarray(params[k]), eager[k], rtol=1e-12)


def test_donated_parameters_are_updated_in_place():
    step = xla.jit(lambda p, x: ad.tree_map(lambda w, g: w - 0.1 * g, p,
                                            ad.grad(mlp)(p, x)), donate_argnums=0)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    params = ad.tree_map(jax.device_put, _params(np.float32))
    new = step(params, x)
    assert all(v.is_deleted() for v in params.values())
    new = step(new, x)
    eager = _params(np.float32)
    for _ in range(2):
        eager = ad.tree_map(lambda w, g: w - 0.1 * g, eager, ad.grad(mlp)(eager, x))
    for k in eager:
        np.testing.assert_allclose(np.asarray(new[k]), eager[k], rtol=1e-4, atol=1e-5)


def test_static_argnums():
    f = xla.jit(lambda x, n: x ** n if n > 1 else x, static_argnums=1)
    np.testing.assert_allclose(np.asarray(f(np.array([2.0]), 3)), [8.0])
    np.testing.assert_allclose(np.asarray(f(np.array([2.0]), 1)), [2.0])


def test_float64_is_never_downcast():
    assert not jax.config.jax_enable_x64
    x = np.array([1.0 + 1e-12, 2.0])
    out = xla.jit(lambda v: v * 3.0)(x)
    assert out.dtype == np.float64
    assert np.asarray(out)[0] == (1.0 + 1e-12) * 3.0
    assert xla.jit(lambda v: wnp.argmax(v))(x).dtype == np.int64
    assert xla.jit(lambda v: v * 3.0)(x.astype(np.float32)).dtype == np.float32
    assert not jax.config.jax_enable_x64  # the scope did not leak


def test_float32_gradient_matches_eager():
    params, x = _params(np.float32), np.ones((3, 4), np.float32)
    compiled = xla.jit(ad.grad(mlp))(params, x)
    eager = ad.grad(mlp)(params, x)
    for k in eager:
        assert compiled[k].dtype == np.float32
        np.testing.assert_allclose(np.asarray(compiled[k]), eager[k], rtol=1e-4, atol=1e-5)


@dataclasses.dataclass
class Linear:
    w: np.ndarray
    b: np.ndarray

    def __call__(self, x):
        return x @ self.w + self.b


def test_dataclass_models_and_their_gradients():
    model = Linear(np.eye(3) * 2.0, np.ones(3))
    loss = lambda m, x: wnp.sum(m(x) ** 2)  # noqa: E731
    g = xla.jit(ad.grad(loss))(model, np.ones((2, 3)))
    assert isinstance(g, Linear)
    np.testing.assert_allclose(np.asarray(g.w), ad.grad(loss)(model, np.ones((2, 3))).w)


def test_lower_text_and_compiled_analyses():
    params, x = _params(np.float32), np.ones((3, 4), np.float32)
    lowered = xla.lower(ad.grad(mlp), params, x)
    text = lowered.as_text()
    assert "func.func public @main" in text and "stablehlo.dot_general" in text
    compiled = lowered.compile()
    assert compiled.cost_analysis()["flops"] > 0
    assert compiled.memory_analysis().argument_size_in_bytes > 0
    out = compiled(params, x)
    np.testing.assert_allclose(np.asarray(out["w1"]), ad.grad(mlp)(params, x)["w1"], rtol=1e-4)
    with pytest.raises(TypeError, match="signature"):
        compiled(params, np.ones((4, 4), np.float32))


def test_devices():
    x = np.ones(3)
    cpu = jax.devices("cpu")[0]
    for device in ("cpu", cpu):
        out = xla.jit(lambda v: v + 1.0, device=device)(x)
        assert out.devices() == {cpu}
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(xla.DeviceNotFoundError, match="no gpu device"):
            xla.jit(lambda v: v, device="gpu")
    with pytest.raises(ValueError, match="device must be"):
        xla.jit(lambda v: v, device="quantum")


@pytest.mark.gpu
def test_cupy_inputs_are_zero_copy_and_outputs_convert_back():
    cupy = pytest.importorskip("cupy")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("jax sees no GPU")
    x = cupy.arange(6, dtype=cupy.float64).reshape(2, 3)
    out = xla.jit(lambda v: v * 2.0)(x)
    assert out.dtype == np.float64 and next(iter(out.devices())).platform == "gpu"
    back = xla.to_cupy(out)
    assert isinstance(back, cupy.ndarray)
    cupy.testing.assert_allclose(back, x * 2.0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to restrict")
def test_cpu_threads_follow_the_affinity_mask():
    script = textwrap.dedent("""
        import os
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        import numpy as np, wengert.xla as xla
        xla.jit(lambda a: a @ a)(np.ones((256, 256), np.float32)).block_until_ready()
        names = [open(f"/proc/self/task/{t}/comm").read() for t in os.listdir("/proc/self/task")]
        print(sum("Eigen" in n for n in names))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout.strip()) <= 1
