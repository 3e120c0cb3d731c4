"""The physics-informed GAN of the stochastic flow problem (Yang, Zhang & Karniadakis
2018, scaled up in the SC19 paper): generators of log-conductivity and head, a critic on
well snapshots, the flow equation's residual by nested forward mode, WGAN-GP training
with atomic checkpoints, and evaluation against Monte Carlo.  See the package README."""

from .config import ConfigError, TrainConfig, make_config, parse_overrides
from .evaluation import evaluate
from .losses import (
                     Snapshots,
                     critic_terms,
                     dirichlet_residual,
                     flux_residual,
                     generator_terms,
                     gradient_penalty,
                     pde_residual,
)
from .networks import FieldGenerator, Generators, discriminator
from .problem import FlowProblem, site_problem
from .runs import train
from .steps import Steps, draw_batch, make_steps
from .training import (
                     Observed,
                     RunState,
                     initial_state,
                     load_checkpoint,
                     run_training,
                     save_checkpoint,
)

__all__ = ["ConfigError", "FieldGenerator", "FlowProblem", "Generators", "Observed",
           "RunState", "Snapshots", "Steps", "TrainConfig", "critic_terms", "dirichlet_residual",
           "discriminator", "draw_batch", "evaluate", "flux_residual", "generator_terms",
           "gradient_penalty", "initial_state", "load_checkpoint", "make_config", "make_steps",
           "parse_overrides", "pde_residual", "run_training", "save_checkpoint", "site_problem",
           "train"]
