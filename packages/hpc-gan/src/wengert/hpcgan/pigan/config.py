"""Training configuration as data: defaults, a preset's ``train`` section, ``--set`` overrides.

Every key has a type and a range; unknown or mistyped keys fail with "did you mean".
The configuration a run used is stored in its folder and compared on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import HpcganError


class ConfigError(HpcganError, ValueError):
    """A training configuration key or value is wrong."""


PROBLEMS = ("forward", "inverse")
DTYPES = ("float32", "float64")
MIXED_PRECISION = ("none", "bf16")
#: ``--precision``: the dtype keys each choice sets.
PRECISIONS = {"float32": {"dtype": "float32", "mixed_precision": "none"},
              "float64": {"dtype": "float64", "mixed_precision": "none"},
              "bf16": {"dtype": "float32", "mixed_precision": "bf16"}}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one PI-GAN run (defaults after the public re-implementations of
    Yang, Zhang & Karniadakis 2018; each preset tunes some in its ``train`` section)."""

    problem: str = "forward"  # which observation network trains: forward or inverse
    latent_dim: int = 5  # m, the dimension of ξ
    width: int = 128  # generator hidden width
    depth: int = 4  # generator hidden layers
    critic_width: int = 128
    critic_depth: int = 4
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    beta1: float = 0.0  # Adam, as WGAN-GP
    beta2: float = 0.9
    critic_steps: int = 1  # critic updates per iteration
    generator_steps: int = 5  # generator updates per iteration
    gp_lambda: float = 0.1  # gradient-penalty weight λ
    w_adv: float = 1.0  # weight of the adversarial term -E[D(fake)] in the generator loss
    w_pde: float = 1.0  # weight of mean r² in the generator loss
    w_bc: float = 1.0  # weight of the boundary residuals
    batch: int = 32  # realisations per step for the critic and the adversarial term
    physics_batch: int = 8  # realisations per step for the PDE and boundary residuals
    collocation: int = 128  # interior points per step (shared by the batch)
    boundary: int = 64  # boundary points per step
    pump_width: float = 1.0  # Gaussian width of a pumping well's source, in grid cells
    well_limit: int = 0  # use only the first N wells of each kind of the network (0: all)
    steps: int = 1000  # iterations
    checkpoint_every: int = 100
    log_every: int = 10
    divergence_limit: float = 1e6  # a loss above this stops the run
    dtype: str = "float32"  # the weights', optimiser's, residual's and losses' dtype
    mixed_precision: str = "none"  # "bf16": the networks' layers compute in bfloat16
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when a run is resumed (everything but its length and logging)."""
        return {k: v for k, v in self.to_dict().items()
                if k not in ("steps", "checkpoint_every", "log_every")
                and not (k == "mixed_precision" and v == "none")}  # as runs before it


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_POSITIVE_INT = {"latent_dim", "width", "depth", "critic_width", "critic_depth", "batch",
                 "physics_batch",
                 "collocation", "boundary", "checkpoint_every", "log_every"}
_NON_NEGATIVE_INT = {"steps", "seed", "critic_steps", "generator_steps", "well_limit"}
_POSITIVE_FLOAT = {"lr_generator", "lr_critic", "pump_width", "divergence_limit"}
_NON_NEGATIVE_FLOAT = {"gp_lambda", "w_adv", "w_pde", "w_bc"}
_CHOICES = {"problem": PROBLEMS, "dtype": DTYPES, "mixed_precision": MIXED_PRECISION}
#: Upper bounds that keep one step within memory (a typo like width=100000 fails early).
_LIMITS = {"latent_dim": 100_000, "width": 16_384, "depth": 64, "critic_width": 16_384,
           "critic_depth": 64, "batch": 65_536, "physics_batch": 65_536, "collocation": 10_000_000,
           "boundary": 10_000_000}


def _unknown(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(_FIELDS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"{where}: unknown training key {key!r}; {hint}known keys: "
                       f"{', '.join(_FIELDS)}")


def _check(key: str, value: Any, where: str) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key} must be {expected}, got {value!r}")

    if key in _CHOICES:
        if value not in _CHOICES[key]:
            close = difflib.get_close_matches(str(value), _CHOICES[key], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"one of {', '.join(_CHOICES[key])}{hint}")
        return value
    if key in _POSITIVE_INT | _NON_NEGATIVE_INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("a whole number")
        low = 1 if key in _POSITIVE_INT else 0
        if value < low:
            raise fail(f"at least {low}")
        if value > _LIMITS.get(key, math.inf):
            raise fail(f"at most {_LIMITS[key]:,}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail("a finite number")
    if key in _POSITIVE_FLOAT and value <= 0:
        raise fail("positive")
    if key in _NON_NEGATIVE_FLOAT and value < 0:
        raise fail("non-negative")
    if key in ("beta1", "beta2") and not 0 <= value < 1:
        raise fail("in [0, 1)")
    return float(value)


def make_config(*layers: tuple[dict, str]) -> TrainConfig:
    """Defaults updated by each ``(mapping, where)`` in turn; ``where`` names the source in
    error messages (a preset's train section, the command line, ...)."""
    values: dict[str, Any] = {}
    for mapping, where in layers:
        if not isinstance(mapping, dict):
            raise ConfigError(f"{where}: expected an object of training keys, got "
                              f"{type(mapping).__name__}")
        for key, value in mapping.items():
            if key not in _FIELDS:
                raise _unknown(key, where)
            values[key] = _check(key, value, where)
    config = TrainConfig(**values)
    if config.critic_steps == 0 and config.generator_steps == 0:
        raise ConfigError("critic_steps and generator_steps are both 0: nothing would train")
    if config.mixed_precision == "bf16" and config.dtype != "float32":
        raise ConfigError(f"mixed_precision=bf16 keeps float32 master weights, but dtype is "
                          f"{config.dtype}; set dtype=float32 (or --precision bf16)")
    return config


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` from ``--set``; values are read as JSON when they parse,
    otherwise kept as strings (so ``problem=inverse`` needs no quotes)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set steps=500")
        if key not in _FIELDS:
            raise _unknown(key, f"--set {item}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out
