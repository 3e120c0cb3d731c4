"""Each package installed alone: wheels built with ``hatch build`` go, one at a time, into ONE
fresh virtual environment (no system site-packages, nothing of this checkout on its path):
``wengert-ad`` alone, then ``wengert-nn`` on top, then ``wengert-xla``, then
``wengert-hpcgan``; after each, a smoke test of that package's public API runs in the new
environment. A dependency missing from a ``pyproject.toml``, or a module reaching for a
package not yet installed, fails here.

Third-party wheels come from the package index through pip's cache (the suite's own
environment has just downloaded the same ones) and are not byte-compiled, so this costs
about a minute of CPU, mostly unpacking jax, scipy and matplotlib."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from commands import installed, run

ROOT = Path(__file__).resolve().parents[1]

# (folder, distribution, smoke test run by the new environment's python in an empty folder)
STAGES = [
    ("ad-core", "wengert-ad", """
        import importlib.util
        import numpy as np
        import wengert.ad as ad

        def f(x):                     # unmodified NumPy with a Python loop
            y = x
            for _ in range(3):
                y = np.sin(y) * x
            return np.sum(y)

        x = np.linspace(0.1, 1.0, 5)
        (g,) = ad.gradient(f, x)
        e, h = np.eye(5), 1e-6
        fd = np.array([(f(x + h * e[i]) - f(x - h * e[i])) / (2 * h) for i in range(5)])
        np.testing.assert_allclose(g, fd, rtol=1e-6)
        print(ad.make_graph(ad.grad(f), x))
        for other in ("wengert.nn", "wengert.xla", "wengert.hpcgan"):
            assert importlib.util.find_spec(other) is None, other
    """),
    ("nn", "wengert-nn", """
        import sys
        import numpy as np
        import wengert.ad as ad
        import wengert.nn as nn

        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 3))
        y = x @ np.array([[1.0], [-2.0], [0.5]])
        model = nn.Chain(nn.Dense(3, 8, nn.tanh, rng=rng, dtype=np.float64),
                         nn.Dense(8, 1, rng=rng, dtype=np.float64))
        loss = lambda m, x, y: nn.mse(m(x), y)
        opt = nn.Adam(1e-2)
        state = opt.init(model)
        first = loss(model, x, y)
        for _ in range(50):
            (g,) = ad.gradient(lambda m: loss(m, x, y), model)
            model, state = opt.update(model, g, state)
        assert loss(model, x, y) < 0.5 * first
        nn.save("model.safetensors", model)
        again = nn.load("model.safetensors", like=model)
        np.testing.assert_array_equal(again(x), model(x))
        assert "wengert.xla" not in sys.modules and "wengert.hpcgan" not in sys.modules
    """),
    ("xla-backend", "wengert-xla", """
        import sys
        import numpy as np
        import wengert.ad as ad
        import wengert.ad.numpy as wnp
        import wengert.xla as xla

        def loss(w, x):
            return wnp.mean(wnp.tanh(x @ w) ** 2)

        w, x = np.full((3, 2), 0.3), np.arange(12.0).reshape(4, 3) / 10
        compiled = xla.jit(ad.grad(loss))(w, x)
        np.testing.assert_allclose(np.asarray(compiled), ad.grad(loss)(w, x), rtol=1e-12)
        assert "stablehlo" in xla.lower(ad.grad(loss), w, x).as_text()
        assert "wengert.nn" not in sys.modules  # the compiler never imports the layers
    """),
    ("hpc-gan", "wengert-hpcgan", """
        import subprocess
        import sys
        from pathlib import Path
        from wengert.hpcgan import load_preset

        assert load_preset("tiny").name == "tiny"
        command = str(Path(sys.executable).parent / "wengert-hpcgan")
        for argv in (["--help"], ["presets"],
                     ["simulate", "--preset", "tiny", "--samples", "2", "--workers", "1",
                      "--quiet", "--out", "data"],
                     ["show", "data"]):
            subprocess.run([command, *argv], check=True, stdout=subprocess.DEVNULL)
        assert sorted(p.name for p in Path("data/figures").iterdir())
    """),
]


def _clean_environment() -> dict[str, str]:
    """This process's environment without anything pointing at the suite's own packages."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.mark.slow
def test_each_package_installs_alone_on_top_of_the_ones_below(tmp_path):
    hatch = installed("hatch")
    wheels = tmp_path / "wheels"
    for folder, _, _ in STAGES:
        run([hatch, "build", "-t", "wheel", str(wheels)], cwd=ROOT / "packages" / folder)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = _clean_environment()
    for folder, distribution, smoke in STAGES:
        (wheel,) = wheels.glob(distribution.replace("-", "_") + "-*.whl")
        run([python, "-m", "pip", "install", "-q", "--no-compile", "--find-links", str(wheels),
             str(wheel)], env=env)
        work = tmp_path / folder
        work.mkdir()
        run([python, "-c", textwrap.dedent(smoke)], cwd=work, env=env)
    run([python, "-m", "pip", "check"], env=env)
