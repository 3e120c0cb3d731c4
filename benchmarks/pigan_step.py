"""One PI-GAN generator step and one critic step, written four ways, timed in one run.

The contenders compute the same step of the same configuration on the same inputs:

* **wengert eager**: ``make_steps(config, snapshots, "eager")``, ``wengert.ad`` on NumPy
  (CuPy with ``--device gpu``);
* **wengert compiled**: ``make_steps(..., "xla")``, each whole step (losses, nested
  residual, gradient, Adam) one XLA executable;
* **JAX**: the step written directly in ``jax.numpy``, ``jax.jvp`` nested for the second
  derivatives, ``jax.grad`` with respect to both generator networks, a hand-written
  Adam, the whole step under ``jax.jit``;
* **torch.func**: the same in PyTorch, eager: ``torch.nn`` modules evaluated through
  ``functional_call``, ``torch.func.jvp`` nested inside ``torch.func.grad``.

The math is that of ``wengert.hpcgan.pigan``: generators ``G_Y, G_u = MLP(x, ξ)`` whose
first layer's latent half is computed once per realisation and broadcast over the
points; the residual ``r = ∇·(e^{G_Y} ∇G_u) + f`` by forward-over-forward derivatives
along each ``e_k``; generator loss ``−mean D(snapshot) + w_pde mean r² + w_bc mean b²``
(Dirichlet and flux boundary residuals); critic loss ``λ·GP − (E D(real) − E D(fake))``
with the WGAN-GP gradient penalty.  Adam has ``β = (beta1, beta2)`` of the configuration
(0 and 0.9 by default), as in ``nn.Adam``.  The peers' math is written once below
(``generator_terms``/``critic_terms``) over a small per-framework adapter, so the two
peers cannot drift apart; the wengert side is the package's own code.

Before timing, the script checks that all four give the same metrics (losses and
gradient norms) and, in float64, the same updated parameters; it stops if they
disagree.  Timed: medians over alternating calls, after one warm-up call each
(compilation excluded; compile times are reported separately).  Printed ratios:
compiled/JAX (target ≤ 1.10 on CPU, ≤ 1.05 on GPU) and eager/torch.func (target ≤ 1.0).

Sizes (``--size``):

* ``tiny`` (default): the ``train`` section of ``presets/tiny.json``;
* ``hanford``: two 6×1024 tanh generators, latent 8, 65,536 collocation points with one
  physics realisation (``physics_batch=1``: 65,536 residual evaluations per step), the
  rest from ``presets/hanford.json``.  Meant for the GPU; ``--set physics_batch=8``
  multiplies the residual work by 8.

``--dtype bfloat16``: JAX and torch keep float32 master weights and Adam moments and
cast parameters and inputs to bfloat16 inside the step (losses summed in float32).
wengert compiled does the same through ``mixed_precision=bf16`` (its first generator
layer, where the coordinates enter, stays float32); wengert eager is skipped (NumPy's
bfloat16 matrix product, from ml_dtypes, is not a fast path).  The TFLOP/s column comes from ``generator_step_flops``, an
analytic count of the generator step's matrix-product FLOPs.

    python benchmarks/pigan_step.py --threads 1                 # tiny, CPU
    python benchmarks/pigan_step.py --dtype float64 --quick     # strict agreement check
    python benchmarks/pigan_step.py --size hanford --device gpu --dtype bfloat16 --quick

The inputs of the compiled contenders are placed on the device before timing (both
sides time the executable, not a host copy); the eager contenders get host (or CuPy)
arrays, as in training.  The real snapshots are random numbers of the right shape: a
step's cost does not depend on their values.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from report_rows import Row, add_json_option, write_rows

HANFORD = {"latent_dim": 8, "width": 1024, "depth": 6, "collocation": 65_536,
           "physics_batch": 1}
TOLERANCE = {"float64": 1e-9, "float32": 2e-3, "bfloat16": 1e-1}


# ---- the analytic FLOP count -----------------------------------------------------------------

def generator_step_flops(config: Any, dim: int, n_conductivity: int, n_head: int,
                         n_dirichlet: int, n_flux: int) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one generator step, as written.

    One *stream* is one pass of a generator's matrix products over a set of rows, a row
    being one (realisation, point) pair: ``(depth−1)`` ``width×width`` products and the
    ``width×1`` output, plus the first layer (``dim×width`` per point, ``latent×width``
    per realisation, both shared by the rows).  Forward streams:

    * residual, per direction ``e_k`` (``dim`` of them): ``G_Y`` primal and tangent (2),
      ``G_u`` primal, inner tangent, outer tangent and their cross term (4);
    * flux boundary: ``G_Y`` (1) and ``G_u`` primal and tangent (2); Dirichlet: ``G_u`` (1);
    * adversarial: ``G_Y`` at the conductivity wells and ``G_u`` at the head wells (1 each,
      ``batch`` realisations) and the critic's forward pass.

    The reverse pass costs two products per forward product (input and weight
    cotangents) in the generators, one (input cotangent) in the critic, whose weights
    are not differentiated.  A first layer's tangent rows are counted once (their second
    tangents are zero).  Elementwise work (tanh and its derivatives, Adam) is left out.
    """
    w, hidden = config.width, config.depth - 1

    def stream(realisations: int, points: int) -> int:
        first = 2 * dim * w * points + 2 * config.latent_dim * w * realisations
        return first + realisations * points * (hidden * 2 * w * w + 2 * w)

    bp = config.physics_batch
    residual = dim * (6 * stream(bp, config.collocation))
    boundary = stream(bp, n_dirichlet) + 3 * stream(bp, n_flux)
    adversarial = stream(config.batch, n_conductivity) + stream(config.batch, n_head)
    cw = config.critic_width
    critic = 2 * config.batch * ((n_conductivity + n_head) * cw
                                 + (config.critic_depth - 1) * cw * cw + cw)
    return 3 * (residual + boundary + adversarial) + 2 * critic


# ---- the two peers' step, written once over a framework adapter --------------------------------

@dataclass
class Framework:
    """What the peer step needs from JAX or PyTorch: the transforms, a few array
    functions, and the networks as functions of their parameter dictionaries."""

    jvp: Callable  # jvp(f, primals, tangents) -> (y, dy)
    grad: Callable  # grad(f)(x) -> df/dx; grad(f, has_aux=True)(x) -> (df/dx, aux)
    xp: Any  # jax.numpy or torch
    concat: Callable  # concat(arrays, axis)
    unit: Callable[[Any, int], Any]  # zeros like x with column k set to 1
    cast: Callable[[Any, Any], Any]  # array, dtype -> array
    field: Callable  # field(which "Y"/"u", params, x, xi) -> (b, n)
    critic: Callable  # critic(params, v) -> (b, 1)
    compute_dtype: Any = None  # None: compute in the parameters' dtype


def _tree(fn: Callable, *trees: Any) -> Any:
    """``fn`` over the leaves of nested dictionaries (the peers' parameter trees)."""
    if isinstance(trees[0], dict):
        return {k: _tree(fn, *(t[k] for t in trees)) for k in trees[0]}
    return fn(*trees)


def snapshots_of(fw: Framework, gen: dict, consts: dict, xi: Any) -> Any:
    """Generated snapshots, standardised as the critic sees them: (b, kc + kh)."""
    v = fw.concat([fw.field("Y", gen["Y"], consts["wells_Y"], xi),
                   fw.field("u", gen["u"], consts["wells_u"], xi)], 1)
    return (v - consts["mean"]) / consts["std"]


def generator_terms(fw: Framework, gen: dict, critic: dict, consts: dict, batch: dict) -> dict:
    xp = fw.xp
    fake = snapshots_of(fw, gen, consts, batch["xi"])
    xi, x = batch["xi_physics"], batch["x"]

    def G_Y(p: Any) -> Any:
        return fw.field("Y", gen["Y"], p, xi)

    def G_u(p: Any) -> Any:
        return fw.field("u", gen["u"], p, xi)

    divergence = 0.0
    for k in range(x.shape[1]):
        e = fw.unit(x, k)

        def flux(p: Any, e: Any = e) -> Any:
            return xp.exp(G_Y(p)) * fw.jvp(G_u, (p,), (e,))[1]

        divergence = divergence + fw.jvp(flux, (x,), (e,))[1]
    r = divergence + batch["source"]
    b_dir = G_u(batch["x_dirichlet"]) - batch["head"]
    b_flux = (xp.exp(G_Y(batch["x_flux"])) * fw.jvp(G_u, (batch["x_flux"],),
                                                    (batch["normal"],))[1] - batch["inflow"])
    n_bc = b_dir.shape[1] + b_flux.shape[1]
    return {"adversarial": -xp.mean(fw.critic(critic, fake)), "pde": xp.mean(r * r),
            "bc": (xp.sum(b_dir * b_dir) + xp.sum(b_flux * b_flux)) / (n_bc * b_dir.shape[0])}


def critic_terms(fw: Framework, critic: dict, gen: dict, consts: dict, batch: dict) -> dict:
    xp = fw.xp
    fake = snapshots_of(fw, gen, consts, batch["xi"])  # gen is not differentiated here
    real = (batch["real"] - consts["mean"]) / consts["std"]
    mixed = batch["eps"] * real + (1 - batch["eps"]) * fake
    slopes = fw.grad(lambda v: xp.sum(fw.critic(critic, v)))(mixed)
    norm = xp.sqrt(xp.sum(slopes * slopes, axis=1) + 1e-12)
    return {"wasserstein": xp.mean(fw.critic(critic, real)) - xp.mean(fw.critic(critic, fake)),
            "penalty": xp.mean((norm - 1) ** 2)}


def adam(fw: Framework, params: dict, grads: dict, state: dict, lr: float,
         beta: tuple[float, float], eps: float = 1e-8) -> tuple[dict, dict]:
    """One Adam step with bias correction, as ``nn.Adam``: ``x − lr/c1 · m/(√v/√c2 + ε)``."""
    b1, b2 = beta
    t = state["step"] + 1
    m = _tree(lambda m, g: m + (1 - b1) * (g - m), state["m"], grads)
    v = _tree(lambda v, g: v + (1 - b2) * (g * g - v), state["v"], grads)
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    new = _tree(lambda x, m, v: x - (lr / c1) * m / (fw.xp.sqrt(v) / c2 ** 0.5 + eps),
                params, m, v)
    return new, {"step": t, "m": m, "v": v}


def peer_steps(fw: Framework, config: Any, consts: dict) -> tuple[Callable, Callable]:
    """``generator_step(gen, critic, state, batch)`` and ``critic_step(critic, gen, state,
    batch)`` of a peer, returning ``(player, state, metrics)`` as ``make_steps``' do."""
    weights = {"adversarial": 1.0, "pde": config.w_pde, "bc": config.w_bc}
    beta = (config.beta1, config.beta2)

    def compute(tree: Any) -> Any:
        if fw.compute_dtype is None:
            return tree
        return _tree(lambda a: fw.cast(a, fw.compute_dtype), tree)

    def norm(tree: dict) -> Any:
        leaves: list = []
        _tree(lambda g: leaves.append(fw.xp.sum(g * g)), tree)
        return fw.xp.sqrt(sum(leaves))

    def as_loss(terms: dict) -> dict:
        return {k: fw.cast(v, consts["loss_dtype"]) for k, v in terms.items()}

    def generator_step(gen: dict, critic: dict, state: dict, batch: dict) -> tuple:
        def objective(g: dict) -> tuple:
            terms = as_loss(generator_terms(fw, compute(g), compute(critic), consts,
                                            compute(batch)))
            return sum(weights[k] * terms[k] for k in weights), terms

        grads, terms = fw.grad(objective, has_aux=True)(gen)
        gen, state = adam(fw, gen, grads, state, config.lr_generator, beta)
        loss = sum(weights[k] * terms[k] for k in weights)
        return gen, state, dict(terms, generator_loss=loss, generator_grad_norm=norm(grads))

    def critic_step(critic: dict, gen: dict, state: dict, batch: dict) -> tuple:
        def objective(c: dict) -> tuple:
            terms = as_loss(critic_terms(fw, compute(c), compute(gen), consts, compute(batch)))
            return config.gp_lambda * terms["penalty"] - terms["wasserstein"], terms

        grads, terms = fw.grad(objective, has_aux=True)(critic)
        critic, state = adam(fw, critic, grads, state, config.lr_critic, beta)
        loss = config.gp_lambda * terms["penalty"] - terms["wasserstein"]
        return critic, state, dict(terms, critic_loss=loss, critic_grad_norm=norm(grads))

    return generator_step, critic_step


# ---- parameters: wengert layers to named dictionaries and back ---------------------------------

def field_layers(field: Any) -> list[tuple[str, Any]]:
    """A ``FieldGenerator``'s dense layers with PyTorch-module names, in the order of
    ``ad.tree_leaves`` (so updated parameters can be compared leaf by leaf)."""
    return ([("coords", field.coords), ("latent", field.latent)]
            + [(f"hidden.{i}", layer) for i, layer in enumerate(field.hidden.layers)]
            + [("out", field.out)])


def critic_layers(critic: Any) -> list[tuple[str, Any]]:
    """The critic MLP's dense layers named as in a ``torch.nn.Sequential`` with a tanh
    module after each hidden layer."""
    return [(str(2 * i), layer) for i, layer in enumerate(critic.layers)]


def named(layers: list[tuple[str, Any]], weight: Callable, array: Callable) -> dict:
    """``{"<layer>.weight": ..., "<layer>.bias": ...}`` (no entry for a missing bias)."""
    out = {}
    for name, layer in layers:
        out[f"{name}.weight"] = array(weight(layer.weight))
        if layer.bias is not None:
            out[f"{name}.bias"] = array(layer.bias)
    return out


def leaves_of(params: dict, layers: list[tuple[str, Any]], weight: Callable) -> list:
    """The peer's parameters as NumPy arrays in wengert's leaf order and layout."""
    import numpy as np

    out = []
    for name, _ in layers:
        out += [np.asarray(weight(params[f"{name}.weight"]), np.float64)]
        out += [np.asarray(params[f"{name}.bias"], np.float64)] if f"{name}.bias" in params else []
    return out


def _zeros_state(params: dict, zeros: Callable) -> dict:
    return {"step": 0.0, "m": _tree(zeros, params), "v": _tree(zeros, params)}


# ---- the peers ---------------------------------------------------------------------------------

def jax_framework(gen: Any, n_critic_layers: int, compute_dtype: Any) -> Framework:
    import jax
    import jax.numpy as jnp

    depth = len(gen.Y.hidden.layers)
    scale = {"Y": (gen.Y.offset, gen.Y.scale), "u": (gen.u.offset, gen.u.scale)}

    def dense(p: dict, name: str, h: Any) -> Any:
        y = h @ p[f"{name}.weight"]
        return y + p[f"{name}.bias"] if f"{name}.bias" in p else y

    def field(which: str, p: dict, x: Any, xi: Any) -> Any:
        h = jnp.tanh(dense(p, "coords", x)[None] + dense(p, "latent", xi)[:, None])
        for i in range(depth):
            h = jnp.tanh(dense(p, f"hidden.{i}", h))
        offset, s = scale[which]
        return offset + s * dense(p, "out", h)[..., 0]

    def critic(p: dict, v: Any) -> Any:
        for i in range(n_critic_layers):
            v = dense(p, str(2 * i), v)
            v = jnp.tanh(v) if i < n_critic_layers - 1 else v
        return v

    return Framework(jax.jvp, jax.grad, jnp, jnp.concatenate,
                     unit=lambda x, k: jnp.zeros_like(x).at[:, k].set(1),
                     cast=lambda a, dtype: a.astype(dtype), field=field, critic=critic,
                     compute_dtype=compute_dtype)


def torch_framework(gen: Any, critic: Any, compute_dtype: Any, device: str) -> Framework:
    """The torch.func peer: ``torch.nn`` modules whose parameters ``functional_call``
    replaces by the differentiated dictionaries."""
    import torch
    from torch.func import functional_call, grad, jvp

    def linear(layer: Any) -> Any:  # shaped like the wengert Dense (weights come later)
        return torch.nn.Linear(*layer.weight.shape, bias=layer.bias is not None)

    class TorchField(torch.nn.Module):
        def __init__(self, field: Any) -> None:
            super().__init__()
            self.coords, self.latent, self.out = (linear(field.coords), linear(field.latent),
                                                  linear(field.out))
            self.hidden = torch.nn.ModuleList(map(linear, field.hidden.layers))
            self.offset, self.scale = field.offset, field.scale

        def forward(self, x: Any, xi: Any) -> Any:
            h = torch.tanh(self.coords(x)[None] + self.latent(xi)[:, None])
            for layer in self.hidden:
                h = torch.tanh(layer(h))
            return self.offset + self.scale * self.out(h)[..., 0]

    layers: list = []
    for i, (_, layer) in enumerate(critic_layers(critic)):
        layers += [linear(layer)]
        layers += [torch.nn.Tanh()] if i < len(critic.layers) - 1 else []
    modules = {"Y": TorchField(gen.Y).to(device), "u": TorchField(gen.u).to(device),
               "critic": torch.nn.Sequential(*layers).to(device)}

    def unit(x: Any, k: int) -> Any:
        e = torch.zeros_like(x)
        e[:, k] = 1
        return e

    return Framework(jvp, grad, torch, torch.cat, unit=unit,
                     cast=lambda a, dtype: a.to(dtype),
                     field=lambda which, p, x, xi: functional_call(modules[which], p, (x, xi)),
                     critic=lambda p, v: functional_call(modules["critic"], p, (v,)),
                     compute_dtype=compute_dtype)


# ---- the shared problem, the contenders, the check -----------------------------------------------

@dataclass
class Contender:
    """One implementation: its two steps bound to their (device-placed) inputs."""

    name: str
    generator: Callable[[], tuple]
    critic: Callable[[], tuple]
    generator_leaves: Callable[[tuple], list]  # updated generator -> wengert-ordered arrays
    critic_leaves: Callable[[tuple], list]
    note: str = ""


def build_problem(args: argparse.Namespace) -> dict:
    """Configuration, players, batches and snapshot normaliser of the benchmark."""
    import numpy as np
    from wengert import ad
    from wengert.hpcgan import load_preset
    from wengert.hpcgan.pigan import (
        Observed,
        draw_batch,
        initial_state,
        make_config,
        parse_overrides,
        site_problem,
    )

    preset = load_preset(args.size)
    config = make_config((preset.train or {}, f"preset {preset.name} train section"),
                         (HANFORD if args.size == "hanford" else {}, "--size hanford"),
                         (parse_overrides(args.set), "--set"),
                         ({"dtype": "float64" if args.dtype == "float64" else "float32",
                           "mixed_precision": "bf16" if args.dtype == "bfloat16" else "none"},
                          "--dtype"))
    problem = site_problem(preset, config.problem, pump_width=config.pump_width,
                           well_limit=config.well_limit)
    kc, kh = len(problem.conductivity_wells), len(problem.head_wells)
    rng = np.random.default_rng(1)
    observed = Observed(rng.standard_normal((256, kc + kh)), kc)
    state = initial_state(problem, observed, config)
    dtype = np.dtype(config.dtype)

    def jitter(tree: Any) -> Any:  # biases start at 0: make their gradients matter
        return ad.tree_map(lambda a: a + (0.1 * rng.standard_normal(a.shape)).astype(a.dtype)
                           if getattr(a, "ndim", 0) == 1 else a, tree)

    return {"config": config, "problem": problem, "kc": kc, "kh": kh,
            "gen": jitter(state.generators), "critic": jitter(state.critic),
            "gen_opt": state.generator_opt, "critic_opt": state.critic_opt,
            "snapshots": observed.normaliser(problem, dtype),
            "generator_batch": draw_batch(problem, observed.snapshots, config, 1,
                                          "generator 0", dtype),
            "critic_batch": draw_batch(problem, observed.snapshots, config, 1, "critic 0",
                                       dtype)}


def wengert_contenders(p: dict, args: argparse.Namespace) -> list[Contender]:
    import numpy as np
    from wengert import ad
    from wengert.hpcgan.pigan import make_steps

    contenders = []
    inputs = (p["gen"], p["critic"], p["gen_opt"], p["critic_opt"], p["generator_batch"],
              p["critic_batch"])
    leaves = (lambda out: [np.asarray(a, np.float64) for a in ad.tree_leaves(out[0])])
    if args.dtype == "bfloat16":
        print("wengert eager: skipped in bfloat16 (NumPy's bfloat16 matrix product is slow)")
    else:
        steps = make_steps(p["config"], p["snapshots"], "eager")
        g, c, go, co, gb, cb = ad.to_device(inputs, "gpu") if args.device == "gpu" else inputs
        contenders.append(Contender("wengert eager", lambda: steps.generator_step(g, c, go, gb),
                                    lambda: steps.critic_step(c, g, co, cb), leaves, leaves))
    note = "float32 master weights, bfloat16 compute" if args.dtype == "bfloat16" else ""
    snapshots = p["snapshots"]
    import jax
    from wengert import xla

    device = xla.resolve_device(args.device)
    g, c, go, co, gb, cb = ad.tree_map(lambda a: jax.device_put(a, device), inputs)
    compiled = make_steps(p["config"], snapshots, "xla")
    contenders.append(Contender("wengert compiled",
                                lambda: compiled.generator_step(g, c, go, gb),
                                lambda: compiled.critic_step(c, g, co, cb), leaves, leaves, note))
    p["compile_wengert"] = lambda: _compile_seconds(
        lambda: make_steps(p["config"], snapshots, "xla"), (g, c, go, gb), (c, g, co, cb))
    return contenders


def _compile_seconds(make: Callable[[], Any], generator_args: tuple,
                     critic_args: tuple) -> tuple[float, float]:
    """Staging + lowering + XLA compilation of each step, from fresh jit objects."""
    steps = make()
    times = []
    for fn, fn_args in ((steps.generator_step, generator_args),
                        (steps.critic_step, critic_args)):
        start = time.perf_counter()
        fn.lower(*fn_args).compile()
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def peer_inputs(p: dict, weight: Callable, array: Callable, compute: Callable) -> dict:
    """The players (master dtype), Adam states, batches and constants of a peer."""
    import numpy as np

    gen = {w: named(field_layers(getattr(p["gen"], w)), weight, array) for w in ("Y", "u")}
    critic = named(critic_layers(p["critic"]), weight, array)
    s = p["snapshots"]
    consts = {"wells_Y": s.conductivity_wells, "wells_u": s.head_wells, "mean": s.mean,
              "std": s.std}
    return {"gen": gen, "critic": critic,
            "gen_opt": _zeros_state(gen, lambda a: a * 0),
            "critic_opt": _zeros_state(critic, lambda a: a * 0),
            "generator_batch": {k: array(v) for k, v in p["generator_batch"].items()},
            "critic_batch": {k: array(v) for k, v in p["critic_batch"].items()},
            "consts": {k: compute(array(np.asarray(v))) for k, v in consts.items()}}


def jax_contender(p: dict, args: argparse.Namespace) -> Contender:
    import jax
    import jax.numpy as jnp
    from wengert import xla

    device = xla.resolve_device(args.device)
    compute_dtype = jnp.bfloat16 if args.dtype == "bfloat16" else None
    fw = jax_framework(p["gen"], len(p["critic"].layers), compute_dtype)
    q = peer_inputs(p, lambda w: w, lambda a: jax.device_put(a, device),
                    (lambda a: a.astype(compute_dtype)) if compute_dtype else (lambda a: a))
    q["consts"]["loss_dtype"] = jnp.float64 if args.dtype == "float64" else jnp.float32
    generator_step, critic_step = peer_steps(fw, p["config"], q.pop("consts"))
    g_jit, c_jit = jax.jit(generator_step), jax.jit(critic_step)
    g_args = (q["gen"], q["critic"], q["gen_opt"], q["generator_batch"])
    c_args = (q["critic"], q["gen"], q["critic_opt"], q["critic_batch"])

    def compile_seconds() -> tuple[float, float]:
        times = []
        for fn, fn_args in ((generator_step, g_args), (critic_step, c_args)):
            start = time.perf_counter()  # a fresh function: jax caches traces per function
            jax.jit(lambda *a, fn=fn: fn(*a)).lower(*fn_args).compile()
            times.append(time.perf_counter() - start)
        return times[0], times[1]

    p["compile_jax"] = compile_seconds
    gen_layers = [(f"{w}.{n}", layer) for w in ("Y", "u")
                  for n, layer in field_layers(getattr(p["gen"], w))]
    note = "float32 master weights, bfloat16 compute" if compute_dtype else ""
    return Contender("JAX", lambda: g_jit(*g_args), lambda: c_jit(*c_args),
                     lambda out: leaves_of(_flat(out[0]), gen_layers, lambda w: w),
                     lambda out: leaves_of(out[0], critic_layers(p["critic"]), lambda w: w),
                     note)


def torch_contender(p: dict, args: argparse.Namespace) -> Contender:
    import numpy as np
    import torch

    device = "cpu"
    if args.device == "gpu":
        if not torch.cuda.is_available():
            raise RuntimeError("this torch build has no CUDA device")
        device = "cuda"
    compute_dtype = torch.bfloat16 if args.dtype == "bfloat16" else None
    fw = torch_framework(p["gen"], p["critic"], compute_dtype, device)

    def array(a: Any) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    q = peer_inputs(p, lambda w: w.T, array,
                    (lambda a: a.to(compute_dtype)) if compute_dtype else (lambda a: a))
    q["consts"]["loss_dtype"] = torch.float64 if args.dtype == "float64" else torch.float32
    generator_step, critic_step = peer_steps(fw, p["config"], q.pop("consts"))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def synced(fn: Callable, *fn_args: Any) -> Callable[[], tuple]:
        def run() -> tuple:
            out = fn(*fn_args)
            sync()
            return out
        return run

    def host(w: Any) -> Any:
        return w.detach().T.cpu()

    gen_layers = [(f"{w}.{n}", layer) for w in ("Y", "u")
                  for n, layer in field_layers(getattr(p["gen"], w))]
    note = "float32 master weights, bfloat16 compute" if compute_dtype else ""
    return Contender(
        "torch.func",
        synced(generator_step, q["gen"], q["critic"], q["gen_opt"], q["generator_batch"]),
        synced(critic_step, q["critic"], q["gen"], q["critic_opt"], q["critic_batch"]),
        lambda out: leaves_of(_tree(lambda a: a.detach().cpu(), _flat(out[0])), gen_layers,
                              host),
        lambda out: leaves_of(_tree(lambda a: a.detach().cpu(), out[0]),
                              critic_layers(p["critic"]), host), note)


def _flat(gen: dict) -> dict:
    """``{"Y": {...}, "u": {...}}`` as one dictionary with ``Y.``/``u.`` prefixes."""
    return {f"{w}.{k}": v for w in ("Y", "u") for k, v in gen[w].items()}


def check_agreement(contenders: list[Contender], dtype: str, lr: dict) -> list[str]:
    """Stop unless every contender's metrics match the first one's; report how far the
    updated parameters are apart (in units of the learning rate; checked in float64,
    where a first Adam step ``lr·g/|g|`` is not flipped by rounding noise in tiny ``g``)."""
    import numpy as np

    tol, lines = TOLERANCE[dtype], []
    for step in ("generator", "critic"):
        outs = {c.name: getattr(c, step)() for c in contenders}
        ref_name, ref = contenders[0].name, outs[contenders[0].name]
        ref_leaves = getattr(contenders[0], f"{step}_leaves")(ref)
        for c in contenders[1:]:
            out = outs[c.name]
            for key, value in ref[2].items():
                a, b = float(out[2][key]), float(value)
                if not abs(a - b) <= tol * max(1.0, abs(b)):
                    raise SystemExit(f"{c.name} disagrees with {ref_name} on the {step} step's "
                                     f"{key}: {a!r} vs {b!r} (tolerance {tol:g}); timings of "
                                     "different computations would mean nothing")
            moved = max(float(np.abs(x - y).max()) for x, y in
                        zip(getattr(c, f"{step}_leaves")(out), ref_leaves)) / lr[step]
            if dtype == "float64" and not moved < 1e-6:
                raise SystemExit(f"{c.name}'s updated {step} differs from {ref_name}'s by "
                                 f"{moved:.1e} learning rates")
            lines.append(f"{step:9s} {c.name:16s} vs {ref_name}: metrics within {tol:g}; "
                         f"updated parameters differ by at most {moved:.1e} lr")
    return lines


# ---- timing and report ---------------------------------------------------------------------------

def _wait(out: Any) -> None:
    """Block until a contender's output exists (jax arrays are asynchronous)."""
    from wengert import ad

    for leaf in ad.tree_leaves(out[2]):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
        elif type(leaf).__module__.startswith("cupy"):
            leaf.device.synchronize()


def medians(contenders: list[Contender], step: str, repeats: int) -> dict[str, float]:
    """Median milliseconds per call; the contenders alternate, after one warm-up each
    (so a burst of load from elsewhere hits all of them alike)."""
    fns = {c.name: getattr(c, step) for c in contenders}
    for fn in fns.values():
        _wait(fn())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _wait(fn())
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def ratio_line(label: str, ms: dict, over: str, under: str, target: float,
               caveat: str = "") -> str:
    """The ratio and its verdict; with a ``caveat`` the two sides are not the same
    program, so no verdict is given."""
    if over not in ms or under not in ms:
        return f"{label}: not measured ({over if over not in ms else under} did not run)"
    ratio = ms[over] / ms[under]
    if caveat:
        return f"{label} = {ratio:.2f} (not judged against {target:.2f}: {caveat})"
    return (f"{label} = {ratio:.2f} (target <= {target:.2f}: "
            f"{'met' if ratio <= target else 'NOT met'} in this run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "hanford"), default="tiny")
    parser.add_argument("--dtype", choices=("float32", "float64", "bfloat16"), default="float32")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="few timed repeats (make bench)")
    parser.add_argument("--repeats", type=int, help="timed calls per contender and step")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPU threads of every library (default: all this process may use)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="training-configuration override, as in `wengert-hpcgan train`")
    add_json_option(parser)
    args = parser.parse_args()
    # Thread pools are sized when the libraries load: pin the process first (XLA sizes
    # its pool from the affinity mask), then tell BLAS, OpenMP and torch.
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.dtype == "float64":
        os.environ["JAX_ENABLE_X64"] = "1"
    import jax
    import torch

    torch.set_num_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 20)
    p = build_problem(args)
    config = p["config"]
    contenders = wengert_contenders(p, args) + [jax_contender(p, args)]
    try:
        contenders.append(torch_contender(p, args))
    except RuntimeError as exc:
        print(f"torch.func: skipped ({exc})")

    batch = p["generator_batch"]
    flops = generator_step_flops(config, p["problem"].dim, p["kc"], p["kh"],
                                 batch["x_dirichlet"].shape[0], batch["x_flux"].shape[0])
    print(f"PI-GAN step, --size {args.size} ({p['problem'].name}: width {config.width}, depth "
          f"{config.depth}, latent {config.latent_dim}, critic {config.critic_depth}x"
          f"{config.critic_width}, batch {config.batch}, physics batch "
          f"{config.physics_batch} x {config.collocation} collocation points, "
          f"{config.boundary} boundary points), {args.dtype}, {args.device} "
          f"({platform.processor() or platform.machine()}), {args.threads} threads, "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
          f"load average {os.getloadavg()[0]:.1f}, jax {jax.__version__}, "
          f"torch {torch.__version__}, median of {repeats}")
    for c in contenders:
        if c.note:
            print(f"  {c.name}: {c.note}")
    print("\nagreement (each step once, on the same inputs):")
    for line in check_agreement(contenders, args.dtype,
                                {"generator": config.lr_generator, "critic": config.lr_critic}):
        print("  " + line)

    wengert_compile = p["compile_wengert"]()
    jax_compile = p["compile_jax"]()
    rows = {step: medians(contenders, step, repeats) for step in ("generator", "critic")}

    names = [c.name for c in contenders]
    print("\n| step | " + " | ".join(f"{n} ms" for n in names)
          + " | compiled/JAX | eager/torch.func |")
    print("|---" * (len(names) + 3) + "|")
    for step, ms in rows.items():
        ratios = [f"{ms[a] / ms[b]:.2f}" if a in ms and b in ms else "—"
                  for a, b in (("wengert compiled", "JAX"), ("wengert eager", "torch.func"))]
        print(f"| {step} | " + " | ".join([f"{ms[n]:.2f}" for n in names] + ratios) + " |")
    print(f"\ngenerator step: {flops / 1e9:.3f} GFLOP (generator_step_flops); TFLOP/s: "
          + ", ".join(f"{n} {flops / (rows['generator'][n] * 1e-3) / 1e12:.3g}" for n in names))
    print(f"compile (staging + lowering + XLA), generator / critic: wengert compiled "
          f"{wengert_compile[0]:.2f} s / {wengert_compile[1]:.2f} s, JAX "
          f"{jax_compile[0]:.2f} s / {jax_compile[1]:.2f} s")
    compiled_target = 1.10 if args.device == "cpu" else 1.05
    caveat = ("wengert runs bfloat16 throughout, JAX float32 master weights with bfloat16 "
              "compute" if args.dtype == "bfloat16" else "")
    for step, ms in rows.items():
        print(f"* {step}: " + ratio_line("compiled/JAX", ms, "wengert compiled", "JAX",
                                         compiled_target, caveat))
        print(f"* {step}: " + ratio_line("eager/torch.func", ms, "wengert eager", "torch.func",
                                         1.0))
    workload = f"PI-GAN {{step}} step, {args.size}, {args.dtype}, {args.device}, " \
               f"{args.threads} thread(s)"
    write_rows(args.json, report_rows(rows, workload, compiled_target, caveat)
               + [Row("hpc-gan", workload.format(step=step) + ": compile time", ours, theirs,
                      "JAX (jax.jit)", "s") for step, ours, theirs in
                  zip(("generator", "critic"), wengert_compile, jax_compile)])


def report_rows(rows: dict, workload: str, compiled_target: float, caveat: str) -> list[Row]:
    """compiled/JAX and eager/torch.func of each step, with the targets printed above
    (none for compiled/JAX when the two do not run the same program)."""
    out = []
    for step, ms in rows.items():
        name = workload.format(step=step)
        for ours, peer, target in (("wengert compiled", "JAX", None if caveat else
                                    compiled_target),
                                   ("wengert eager", "torch.func", 1.0)):
            if ours in ms and peer in ms:
                out.append(Row("hpc-gan", f"{name}, {ours}", ms[ours], ms[peer], peer, "ms",
                               target, caveat if ours == "wengert compiled" else ""))
    return out


if __name__ == "__main__":
    main()
