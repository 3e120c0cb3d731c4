"""The ``wengert-hpcgan`` command: simulate and show Monte Carlo datasets, inspect presets."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import HpcganError, TrainingInterrupted, explain_os_error


def _whole_number(text: str, minimum: int, requirement: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1, "at least 1")


def _grid_size(text: str) -> int:
    return _whole_number(text, 2, "at least 2 cells per side")


def _seed(text: str) -> int:
    return _whole_number(text, 0, "non-negative")


def _simulate(args: argparse.Namespace) -> None:
    from .montecarlo import simulate
    from .presets import load_preset

    preset = load_preset(args.preset)
    out = Path(args.out or f"hpcgan-{preset.name}")
    dataset = simulate(
        preset,
        out,
        samples=args.samples,
        seed=args.seed,
        workers=args.workers,
        solver=args.solver,
        progress=not args.quiet,
    )
    meta = dataset.metadata
    kl = meta["field"]["kl"]
    print(
        f"wrote {meta['samples']} realisations of {preset.name!r} to {out}: "
        f"{meta['grid']['active_cells']} cells, "
        f"{kl['modes']} KL modes ({kl['retained_variance_fraction']:.4f} of the variance), "
        f"max relative mass imbalance {meta['solver']['max_relative_mass_imbalance']:.1e}"
    )


def _show(args: argparse.Namespace) -> None:
    from .figures import write_figures
    from .montecarlo import check_output_folder, load_dataset

    out = Path(args.out) if args.out else Path(args.folder) / "figures"
    check_output_folder(out)
    dataset = load_dataset(args.folder)
    for path in write_figures(dataset, out, args.index):
        print(path)


def _parallel(args: argparse.Namespace) -> object | None:
    """The MPI layout of ``train``, or ``None`` for a single-process run (no MPI options and
    not started by an MPI launcher with several ranks)."""
    from .distributed.mpi import launched_with_several_ranks

    options = {"replicas": args.replicas, "ranks_per_node": args.ranks_per_node,
               "decomp": args.decomp, "placement": args.placement, "timeout": args.comm_timeout}
    given = {k: v for k, v in options.items() if v is not None}
    if not given and not launched_with_several_ranks():
        return None
    from .distributed.loop import Parallel

    return Parallel(**given)


def _train(args: argparse.Namespace) -> None:
    from .pigan.config import parse_overrides
    from .pigan.runs import train

    parallel = _parallel(args)
    try:
        out, state = train(
            args.preset,
            data=args.data,
            out=args.out,
            problem=args.problem,
            backend=args.backend,
            steps=args.steps,
            seed=args.seed,
            device=args.device,
            resume=args.resume,
            overrides=parse_overrides(args.set),
            progress=not args.quiet,
            parallel=parallel,
            precision=args.precision,
        )
    except HpcganError:
        if parallel is not None and _world_rank() != 0:
            sys.exit(2)  # every rank stops with the same error: rank 0 prints it
        raise
    if parallel is None or _world_rank() == 0:
        print(f"trained {state.iteration} iterations; run folder {out} (checkpoint, "
              f"metrics.jsonl); next: wengert-hpcgan evaluate {out}")


def _world_rank() -> int:
    from .distributed.mpi import world_rank

    return world_rank()


def _evaluate(args: argparse.Namespace) -> None:
    from .pigan.evaluation import evaluate

    result = evaluate(
        args.run_dir, reference=args.reference, samples=args.samples, compare_with=args.compare
    )
    for line in summary_lines(result):
        print(line)
    for path in result.get("figures", []):
        print(path)


def summary_lines(result: dict) -> list[str]:
    """Three lines: the PI-GAN's errors against Monte Carlo, and the baselines'."""
    def errors(metrics: dict) -> str:
        site, wells = metrics["site"], metrics["validation_wells"]
        std = site["u_std_rel_l2"]
        return (
            f"u mean {site['u_mean_rel_l2']:.2%}, u std "
            f"{'n/a' if std is None else f'{std:.1%}'}, Y mean {site['Y_mean_rms_in_sigma']:.2f} σ"
            f", Y std {site['Y_std_rel_l2']:.1%} (validation wells: Y mean max "
            f"{wells['Y_mean_max_in_sigma']:.2f} σ, Y std max {wells['Y_std_max_rel']:.0%})"
        )

    lines = [f"PI-GAN vs Monte Carlo:           {errors(result['pigan'])}",
             f"one solve with K = exp(E[Y]):    {errors(result['mean_conductivity_solve'])}"]
    if "baseline_run" in result:
        lines.append(f"compared run:                    {errors(result['baseline_run']['pigan'])}")
    else:
        lines.append(f"finite-volume residual of generated fields: {result['pigan']['fv_residual']:.3g}")
    return lines


def _bench(args: argparse.Namespace) -> None:
    from .bench.scaling import free_cores, run_scaling, write_results

    model = args.kind == "model"
    cores = free_cores()
    ranks = args.ranks or ([1, 2] if model else
                           [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= cores] or [1])
    measurements, machine = run_scaling(
        args.preset, ranks=ranks, modes=["weak"] if model else args.modes,
        decomps=["1x1"] if model else args.decomp, backend=args.backend, steps=args.steps,
        warmup=args.warmup, per_replica=args.per_replica,
        physics_per_replica=args.physics_per_replica, overrides=args.set, data=args.data,
        work=args.work, timeout=args.timeout, oversubscribe=args.oversubscribe,
        progress=not args.quiet)
    print(write_results(measurements, machine, None if model else args.json, args.markdown))
    if not model:
        return
    from .bench.model import (
        Link,
        build_model,
        gradient_messages,
        plot,
        run_probe,
        summary,
        write_json,
    )

    result = build_model(measurements, gradient_messages(args.preset, args.set),
                         run_probe(2, args.probe_repeats), compute_seconds=args.compute_seconds,
                         intra=None if args.intra_alpha is None else Link(
                             args.intra_alpha, 1 / args.intra_bandwidth),
                         inter=Link(args.inter_alpha, 1 / args.inter_bandwidth))
    for line in summary(result):
        print(line)
    inside = "measured here" if args.intra_alpha is None else "assumed"
    title = (f"{args.preset}: α–β model, intra-node {inside}, inter-node assumed; "
             f"T_c = {result.compute_seconds * 1e3:.0f} ms")
    print(plot(result, args.png, title))
    if args.json:
        write_json(result, args.json)


def _presets(args: argparse.Namespace) -> None:
    from .presets import available_presets, load_preset

    for name in available_presets():
        preset = load_preset(name)
        grid = preset.site.grid
        print(
            f"{name:10s} {grid.nx:5d} x {grid.ny:<5d} {grid.n_active:8d} active cells   "
            f"{preset.description}"
        )


def _kl(args: argparse.Namespace) -> None:
    from .presets import load_preset
    from .random_field import karhunen_loeve

    preset = load_preset(args.preset)
    field, grid = preset.field, preset.site.grid
    start = time.perf_counter()
    kl = karhunen_loeve(
        grid,
        field.model,
        mean=field.mean,
        variance_fraction=field.variance_fraction,
        max_modes=field.max_modes,
    )
    print(
        f"{preset.name}: {grid.n_active} active cells, {kl.n_modes} KL modes retain "
        f"{kl.retained_fraction:.4f} of the variance "
        f"(requested {field.variance_fraction}; method {kl.method}, "
        f"{time.perf_counter() - start:.1f} s)"
    )


def _verify(args: argparse.Namespace) -> None:
    from .verification import convergence_study

    def order(row: dict, key: str) -> str:
        return f"{row[key]:6.2f}" if key in row else f"{'-':>6s}"

    try:
        rows = convergence_study(tuple(args.sizes))
    except ValueError as exc:
        raise HpcganError(f"{exc}; pass different --sizes") from None
    print(
        f"{'grid':>9s} {'h':>10s} {'L2 error':>10s} {'order':>6s} {'max error':>10s} {'order':>6s}"
    )
    for row in rows:
        print(
            f"{row['n']:4d}^2    {row['h']:10.3e} {row['l2']:10.3e} {order(row, 'order_l2')} "
            f"{row['max']:10.3e} {order(row, 'order_max')}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wengert-hpcgan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser(
        "simulate", help="draw realisations, solve them and save a dataset"
    )
    simulate.add_argument(
        "--preset",
        required=True,
        help="a shipped preset (see 'presets') or a path to a .json preset",
    )
    simulate.add_argument(
        "--samples", type=_positive_int, help="number of realisations (default: the preset's)"
    )
    simulate.add_argument(
        "--seed", type=_seed, default=0, help="seed of the KL coefficients (default 0)"
    )
    simulate.add_argument("--out", help="dataset folder (default: hpcgan-PRESET)")
    simulate.add_argument(
        "--workers", type=_positive_int, help="solver processes (default: the CPUs available)"
    )
    simulate.add_argument("--solver", choices=("auto", "direct", "amg"), default="auto")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(run=_simulate)

    show = commands.add_parser("show", help="write PNG figures of a dataset")
    show.add_argument("folder", help="a folder written by 'simulate'")
    show.add_argument("--out", help="figure folder (default: FOLDER/figures)")
    show.add_argument("--index", type=int, default=0, help="which realisation to draw (default 0)")
    show.set_defaults(run=_show)

    train = commands.add_parser("train", help="train the physics-informed GAN of a preset")
    train.add_argument("--preset", required=True)
    train.add_argument("--data", help="dataset folder (default: reuse or generate hpcgan-PRESET)")
    train.add_argument("--out", help="run folder (default: pigan-PRESET-PROBLEM)")
    train.add_argument("--problem", choices=("forward", "inverse"))
    train.add_argument("--backend", choices=("auto", "eager", "xla"), default="auto")
    train.add_argument("--steps", type=_positive_int, help="iterations (default: the preset's)")
    train.add_argument("--seed", type=_seed)
    train.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    train.add_argument("--precision", choices=("float32", "float64", "bf16"),
                       help="arithmetic: float32 (the default), float64, or bf16 (bfloat16 "
                            "layers, float32 master weights, residual and losses)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                       help="override training keys, e.g. --set w_pde=0 w_bc=0")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    mpi = train.add_argument_group(
        "distributed (under mpiexec/srun/jsrun; see 'Distributed training' in the README)")
    mpi.add_argument("--replicas", type=_positive_int,
                     help="data-parallel replicas (default: every MPI rank)")
    mpi.add_argument("--ranks-per-node", type=_positive_int,
                     help="group consecutive ranks into fake nodes for the hierarchical "
                          "all-reduce (default: the real shared-memory nodes)")
    mpi.add_argument("--decomp", metavar="PxQ",
                     help="domain decomposition: P x Q overlapping subdomains (default 1x1)")
    mpi.add_argument("--placement", choices=("together", "split"),
                     help="generators and critic on the same ranks (together, the default) "
                          "or on different ranks (split: twice the ranks, snapshots and "
                          "their cotangents sent between them)")
    mpi.add_argument("--comm-timeout", type=float, metavar="SECONDS",
                     help="abort the job when a collective waits longer (default 300)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate", help="compare a trained PI-GAN with Monte Carlo; write metrics and figures"
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by 'train'")
    evaluate.add_argument("--reference", help="Monte Carlo dataset (default: the run's)")
    evaluate.add_argument("--samples", type=_positive_int, default=1000)
    evaluate.add_argument("--compare", help="another run (e.g. trained with --set w_pde=0 w_bc=0)")
    evaluate.set_defaults(run=_evaluate)

    bench = commands.add_parser(
        "bench", help="scaling study: step time, FLOPs, communication, efficiency under mpiexec"
        " ('bench model': the α–β model to 27,500 GPUs)")
    bench.add_argument("kind", nargs="?", choices=("scaling", "model"), default="scaling",
                       help="scaling (default): weak and strong scaling table; model: fit the "
                            "α–β model to 1-2 rank runs, predict 27,500 GPUs, draw --png")
    bench.add_argument("--preset", default="tiny")
    bench.add_argument("--ranks", type=_positive_int, nargs="+",
                       help="rank counts (default: powers of two up to the free cores; "
                            "model: 1 2)")
    bench.add_argument("--modes", nargs="+", choices=("weak", "strong"),
                       default=["weak", "strong"])
    bench.add_argument("--decomp", nargs="+", default=["1x1"], metavar="PxQ",
                       help="domain decompositions to run (ranks must be multiples of P*Q)")
    bench.add_argument("--backend", choices=("auto", "eager", "xla"), default="auto")
    bench.add_argument("--steps", type=_positive_int, default=20,
                       help="iterations per configuration (default 20)")
    bench.add_argument("--warmup", type=_seed, default=3,
                       help="first iterations left out of the medians (compilation; default 3)")
    bench.add_argument("--per-replica", type=_positive_int,
                       help="realisations per replica and step (default: the preset's batch)")
    bench.add_argument("--physics-per-replica", type=_positive_int,
                       help="physics realisations per replica (default: the preset's)")
    bench.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                       help="training overrides for every configuration")
    bench.add_argument("--data", help="dataset folder (default: 64 realisations made in --work)")
    bench.add_argument("--work", help="folder for runs and data (default: hpcgan-bench-PRESET)")
    bench.add_argument("--json", help="also write the results as JSON")
    bench.add_argument("--markdown", help="also write the table as a Markdown file")
    bench.add_argument("--timeout", type=float, default=1800.0,
                       help="seconds one configuration may run (default 1800)")
    bench.add_argument("--oversubscribe", action="store_true",
                       help="allow more ranks than free cores (the numbers then say little)")
    bench.add_argument("--png", default="hpcgan-bench-model.png", help="model: the plot")
    bench.add_argument("--compute-seconds", type=float,
                       help="model: T_c per iteration (default: measured at 1 rank)")
    bench.add_argument("--inter-alpha", type=float, default=2e-6,
                       help="model: assumed inter-node latency, s (default 2e-6, EDR InfiniBand)")
    bench.add_argument("--inter-bandwidth", type=float, default=12.5e9,
                       help="model: assumed inter-node bandwidth, B/s (default 12.5e9)")
    bench.add_argument("--intra-alpha", type=float,
                       help="model: assume this intra-node latency, s, instead of the fit (with "
                            "--intra-bandwidth; e.g. NVLink on a GPU node)")
    bench.add_argument("--intra-bandwidth", type=float, default=50e9,
                       help="model: with --intra-alpha, the assumed bandwidth, B/s (default 50e9)")
    bench.add_argument("--probe-repeats", type=_positive_int, default=30)
    bench.add_argument("--quiet", action="store_true", help="no per-configuration progress")
    bench.set_defaults(run=_bench)

    commands.add_parser("presets", help="list the shipped presets").set_defaults(run=_presets)

    kl = commands.add_parser("kl", help="compute a preset's KL expansion and report its mode count")
    kl.add_argument("--preset", required=True)
    kl.set_defaults(run=_kl)

    verify = commands.add_parser(
        "verify", help="manufactured-solution convergence study of the flow solver"
    )
    verify.add_argument("--sizes", type=_grid_size, nargs="+", default=[16, 32, 64, 128, 256])
    verify.set_defaults(run=_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except TrainingInterrupted as exc:
        print(f"wengert-hpcgan: {exc}", file=sys.stderr)
        return 130
    except (HpcganError, IndexError) as exc:
        print(f"wengert-hpcgan: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions, a file where a folder should be
        print(f"wengert-hpcgan: error: {explain_os_error(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(
            "wengert-hpcgan: error: out of memory; use fewer --samples or --workers",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("wengert-hpcgan: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
