"""Run the benchmark scripts that can run here and write one report (`make bench`).

Each script runs in its own process, one at a time (so no two contend for the cores),
with the arguments and thread count it documents and ``--json`` to collect its rows
(``report_rows.Row``).  The whole run is kept as a record (``REPORT.json``: machine,
versions, each script's status, every row) and rendered from it into ``REPORT.md``
(one table per package) and into the tables between marker comments in the READMEs::

    <!-- bench:nn-models -->
    ...generated table of benchmarks/nn_models.py's rows...
    <!-- /bench -->

``<!-- bench:summary -->`` is the per-package count of targets met.  A block whose
script did not run in this record is left as it is.

    python benchmarks/report.py                # CPU suite: REPORT.md (make bench)
    python benchmarks/report.py --gpu          # GPU suite: REPORT_GPU.md (make bench-gpu)
    python benchmarks/report.py --render-only  # re-render REPORT.md and READMEs from REPORT.json
    python benchmarks/report.py --only nn_models,nn_train --no-readmes

A script that fails or times out is reported as such (with the tail of its output) and
makes the run exit non-zero after the report is written; a script whose requirements
are missing here (a GPU, MPI, a peer library) is listed as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from report_rows import PACKAGES, Row

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOGS = ROOT / "build" / "bench"
GPU_BUDGET_S = 8 * 60


@dataclass(frozen=True)
class Script:
    """One benchmark invocation of a suite."""

    file: str  # in benchmarks/; a name ending in ".py" runs under this Python
    args: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # "gpu", "mpi", or importable module names
    timeout_s: int = 300
    mpi_ranks: int = 0  # > 0: launched as `mpiexec -n mpi_ranks python file ...`
    key: str = ""  # README marker key; default: the file's stem with "-" for "_"
    rows: bool = True  # False: a command with no report rows (a test suite)
    blas_threads: int = 0  # > 0: OpenBLAS/MKL/OpenMP pools of the process(es) capped

    @property
    def marker(self) -> str:
        return self.key or Path(self.file).stem.replace("_", "-")


# Thread counts: 1 where the script's README numbers are one-thread comparisons (every
# peer gets the same count); the XLA scripts use the whole machine, as jax.jit does.
# Scripts that set no thread count themselves get one BLAS thread per process: the
# staged while-loop (as its README table) and the MPI runs (one rank per core); two
# BLAS threads per process on a busy 2-core machine made them ten times slower.
CPU_SUITE = (
    Script("ad_overhead.py", ("--quick", "--threads", "1"), ("torch",)),
    Script("hvp_mlp.py", ("--quick", "--threads", "1")),
    Script("while_loop_memory.py", ("--quick",), blas_threads=1),
    Script("nn_train.py", ("--quick", "--threads", "1"), ("torch",)),
    Script("nn_models.py", ("--quick", "--threads", "1"), ("torch",), timeout_s=420),
    Script("xla_programs.py", ("--quick",), ("jax",)),
    Script("xla_vgg19.py", ("--quick",), ("jax",)),
    Script("pigan_step.py", ("--quick", "--threads", "1"), ("jax", "torch")),
    Script("flow_solver.py", ("--quick",)),
    Script("pigan_scaling.py", ("--quick",), ("mpi",), timeout_s=900, blas_threads=1),
    Script("pigan_decomposition.py", ("--quick",), ("mpi",), timeout_s=900, blas_threads=1),
    Script("pigan_comm_model.py", ("--quick",), ("mpi",), timeout_s=600,  # its own mpiexec
           blas_threads=1),
)

# `make bench-gpu`: fits GPU_BUDGET_S on one GPU (the timeouts add up to it).
GPU_SUITE = (
    # The CuPy tests: those marked `gpu` and those named or parametrised for cupy/gpu.
    Script("-m pytest", ("-q", "-p", "no:cacheprovider", "-k", "gpu or cupy", "packages",
                         "integration_tests"), ("gpu", "cupy", "pytest"), timeout_s=120,
           key="gpu-tests", rows=False),
    Script("xla_vgg19.py", ("--device", "gpu", "--quick"), ("gpu", "jax"), timeout_s=240,
           key="xla-vgg19-gpu"),
    Script("pigan_step.py", ("--size", "hanford", "--device", "gpu", "--dtype", "bfloat16",
                             "--quick"), ("gpu", "jax", "torch"), timeout_s=120,
           key="pigan-step-gpu"),
)


# ---- what this machine can run --------------------------------------------------------------

def gpu_problem() -> str | None:
    """Why no GPU benchmark can run here (None: a CUDA device is visible to jax)."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA driver here (nvidia-smi not found)"
    probe = subprocess.run([sys.executable, "-c", "import jax; print(len(jax.devices('gpu')))"],
                           check=False, capture_output=True, text=True, timeout=120)
    if probe.returncode != 0 or not probe.stdout.strip().isdigit():
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"jax sees no GPU under {sys.executable} ({last})"
    return None


def mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def missing(script: Script, gpu: str | None) -> str | None:
    """Why ``script`` cannot run here, or None."""
    for need in script.needs:
        if need == "gpu" and gpu:
            return f"needs a GPU: {gpu} (make bench-gpu on a GPU machine)"
        if need == "mpi":
            if importlib.util.find_spec("mpi4py") is None:
                return "needs mpi4py: pip install 'wengert-hpcgan[mpi]'"
            if mpiexec() is None:
                return "needs mpiexec: pip install mpich (or a system MPI)"
        elif need != "gpu" and importlib.util.find_spec(need) is None:
            return f"needs {need}, not installed under {sys.executable}"
    return None


# ---- running ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What became of one script in a run."""

    script: str  # "file args..."
    key: str
    status: str  # "ran", "skipped", "failed"
    seconds: float = 0.0
    detail: str = ""  # the skip reason, the failure's tail, or a test summary
    rows: list[dict] = field(default_factory=list)


def child_environment(script: Script) -> dict[str, str]:
    """The scripts import this checkout's packages (first on the path), whatever is
    installed, so the report measures the code beside it."""
    env = dict(os.environ)
    sources = [str(p) for p in sorted((ROOT / "packages").glob("*/src"))]
    env["PYTHONPATH"] = os.pathsep.join(sources + [p for p in [env.get("PYTHONPATH")] if p])
    if script.blas_threads:
        for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            env[variable] = str(script.blas_threads)
    return env


def command(script: Script, json_path: Path) -> list[str]:
    if not script.file.endswith(".py"):
        return [sys.executable, *script.file.split(), *script.args]
    cmd = [sys.executable, str(HERE / script.file), *script.args]
    cmd += ["--json", str(json_path)] if script.rows else []
    return ([mpiexec(), "-n", str(script.mpi_ranks)] if script.mpi_ranks else []) + cmd


def run_script(script: Script, gpu: str | None, work: Path) -> Outcome:
    name = " ".join([script.file, *script.args])
    out = Outcome(name, script.marker, "skipped")
    reason = missing(script, gpu)
    if reason:
        out.detail = reason
        return out
    json_path = work / f"{script.marker}.json"
    log = LOGS / f"{script.marker}.log"
    print(f"[bench] {name} (timeout {script.timeout_s} s, log {os.path.relpath(log, ROOT)})",
          flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command(script, json_path), cwd=work if script.rows else ROOT,
                              env=child_environment(script), check=False,
                              capture_output=True, text=True, timeout=script.timeout_s)
        text, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        text = _text(exc.stdout) + _text(exc.stderr)
        code = None
    out.seconds = time.perf_counter() - start
    log.write_text(text)
    tail = " / ".join(text.strip().splitlines()[-3:])
    if code is None:
        out.status, out.detail = "failed", f"timed out after {script.timeout_s} s: {tail}"
    elif code != 0:
        out.status, out.detail = "failed", f"exit {code}: {tail}"
    elif script.rows and not json_path.exists():
        out.status, out.detail = "failed", "wrote no rows (does it take --json?)"
    else:
        out.status = "ran"
        out.detail = "" if script.rows else tail
        out.rows = json.loads(json_path.read_text()) if script.rows else []
    print(f"[bench]   {out.status} in {out.seconds:.0f} s {out.detail[:200]}", flush=True)
    return out


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


# ---- machine and versions --------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


DISTRIBUTIONS = ("numpy", "scipy", "jax", "jaxlib", "torch", "autograd", "pyamg", "mpi4py",
                 "cupy", "wengert-ad", "wengert-nn", "wengert-xla", "wengert-hpcgan")


def versions() -> dict[str, str]:
    """Installed versions; this checkout's package versions from their pyproject.toml
    (the scripts import the checkout, whatever is installed)."""
    out = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        text = pyproject.read_text()
        name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.MULTILINE)
        version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if name and version:
            out[name.group(1)] = version.group(1)
    return out


def machine() -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "cpu": cpu_model(),
            "platform": f"{platform.system()} {platform.machine()}",
            "load_average": round(os.getloadavg()[0], 2)}


# ---- rendering -------------------------------------------------------------------------------

def number(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0 or 0.01 <= abs(x) < 1e5:
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
    return f"{x:.2e}"


def target_text(row: Row) -> str:
    if row.target is None:
        return "—"
    if row.target_on == "ours":
        return f"≤ {number(row.target)} {row.unit}"
    if row.target_on == "difference":
        return f"≤ +{number(row.target)} {row.unit} over the peer"
    return f"≤ {row.target:.2f}×"


def met_text(row: Row) -> str:
    return {None: "—", True: "yes", False: "**no**"}[row.met]


def row_table(rows: list[Row], with_script: list[str] | None = None) -> list[str]:
    """Markdown table of ``rows``; ``with_script`` adds a first column (the script)."""
    head = ["workload", "ours", "peer", "ratio", "target", "met"]
    if with_script is not None:
        head.insert(0, "script")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if h in ("ours", "ratio") else "---" for h in head) + "|"]
    for i, r in enumerate(rows):
        peer = "—" if r.peer is None else f"{number(r.peer)} {r.unit} ({r.peer_name})"
        name = r.name + (f" — {r.notes}" if r.notes else "")
        cells = [name, f"{number(r.ours)} {r.unit}", peer,
                 "—" if r.ratio is None else f"{r.ratio:.2f}", target_text(r), met_text(r)]
        if with_script is not None:
            cells.insert(0, f"`{with_script[i]}`")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def record_rows(record: dict) -> list[tuple[str, Row]]:
    """(marker key, row) of every row in the record, in suite order."""
    return [(o["key"], Row(**r)) for o in record["outcomes"] for r in o["rows"]]


def stamp(record: dict) -> str:
    m = record["machine"]
    return (f"{record['date']}, {m['cores']} cores ({m['cpu']}), load average "
            f"{m['load_average']} at the start")


def render_report(record: dict) -> str:
    title = "GPU benchmark report" if record["suite"] == "gpu" else "Benchmark report"
    v = ", ".join(f"{k} {val}" for k, val in record["versions"].items())
    lines = [f"# {title}", "",
             (f"Generated by `{record['command']}` (`benchmarks/report.py`); do not edit by "
              "hand. Each row is one of our programs beside its peer, measured in the same "
              "process of the same run; ratio = ours / peer (below 1: ours is faster or "
              "smaller); the target is the bound its issue sets; \"met\" judges this run only."),
             "",
             f"* date: {record['date']} (run took {record['seconds'] / 60:.1f} min)",
             f"* machine: {record['machine']['cores']} cores, {record['machine']['cpu']}, "
             f"{record['machine']['platform']}"
             + (f", {record['gpu']}" if record.get("gpu") else ""),
             (f"* load average at the start: {record['machine']['load_average']} (a busy "
              "machine makes every number, ratios included, less trustworthy)"),
             f"* versions: {v}", ""]
    rows = record_rows(record)
    for package in PACKAGES:
        mine = [(k, r) for k, r in rows if r.package == package]
        if not mine:
            continue
        lines += [f"## {package}", ""]
        lines += row_table([r for _, r in mine], with_script=[k for k, _ in mine]) + [""]
    lines += ["## Scripts", "", "| script | status | seconds | detail |", "|---|---|---:|---|"]
    for o in record["outcomes"]:
        detail = o["detail"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{o['script']}` | {o['status']} | {o['seconds']:.0f} | {detail} |")
    return "\n".join(lines) + "\n"


def summary_table(record: dict) -> list[str]:
    rows = [r for _, r in record_rows(record)]
    lines = ["| package | comparisons | with a target | targets met |", "|---|---:|---:|---:|"]
    for package in PACKAGES:
        mine = [r for r in rows if r.package == package]
        judged = [r for r in mine if r.met is not None]
        if mine:
            lines.append(f"| {package} | {len(mine)} | {len(judged)} | "
                         f"{sum(r.met for r in judged)} |")
    missed = [o["script"].split()[0] for o in record["outcomes"]
              if o["status"] == "failed" or (o["status"] == "skipped" and o["key"] not in
                                             {s.marker for s in GPU_SUITE})]
    if missed:
        lines += ["", f"Not measured in that run (failed or skipped here): {', '.join(missed)}."]
    return lines


MARKER = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench -->)", re.DOTALL)


def rewrite_markers(text: str, record: dict, report_link: str) -> tuple[str, list[str]]:
    """``text`` with each marked block whose script ran in ``record`` regenerated; also
    the keys it rewrote.  An unknown key is an error (a typo would silently go stale)."""
    known = {s.marker for s in CPU_SUITE + GPU_SUITE} | {"summary"}
    by_key: dict[str, list[Row]] = {}
    for key, row in record_rows(record):
        by_key.setdefault(key, []).append(row)
    done = []

    def block(match: re.Match) -> str:
        key = match.group(2)
        if key not in known:
            raise ValueError(f"unknown benchmark marker 'bench:{key}': one of {sorted(known)}")
        if key == "summary" and record["suite"] == "cpu" and by_key:
            table = summary_table(record)
        elif key in by_key:
            table = row_table(by_key[key])
        else:
            return match.group(0)
        done.append(key)
        note = (f"Generated by `{record['command']}` from [{Path(report_link).name}]"
                f"({report_link}): {stamp(record)}.")
        return match.group(1) + "\n".join(table + ["", note]) + "\n" + match.group(4)

    return MARKER.sub(block, text), done


def readmes() -> list[Path]:
    return [ROOT / "README.md"] + sorted((ROOT / "packages").glob("*/README.md"))


def write_outputs(record: dict, report: Path, update_readmes: bool) -> None:
    report.write_text(render_report(record))
    print(f"[bench] wrote {os.path.relpath(report, ROOT)}")
    if not update_readmes:
        return
    for readme in readmes():
        link = os.path.relpath(report, readme.parent)
        text, done = rewrite_markers(readme.read_text(), record, link)
        if done:
            readme.write_text(text)
            print(f"[bench] {os.path.relpath(readme, ROOT)}: rewrote {', '.join(done)}")


# ---- main ------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU suite (make bench-gpu): fails without a GPU")
    parser.add_argument("--only", help="comma-separated script stems to run (others: skipped)")
    parser.add_argument("--no-readmes", action="store_true",
                        help="write the report only, leave the README tables alone")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: re-render from the saved REPORT(.GPU).json")
    args = parser.parse_args()
    stem = "REPORT_GPU" if args.gpu else "REPORT"
    report, saved = HERE / f"{stem}.md", HERE / f"{stem}.json"
    if args.render_only:
        write_outputs(json.loads(saved.read_text()), report, not args.no_readmes)
        return 0
    gpu = gpu_problem()
    if args.gpu and gpu:
        print(f"make bench-gpu needs a CUDA GPU, and there is none: {gpu}.\nNothing was "
              f"measured; {os.path.relpath(report, ROOT)} was not written.", file=sys.stderr)
        return 2
    suite = GPU_SUITE if args.gpu else CPU_SUITE
    only = set(args.only.split(",")) if args.only else None
    LOGS.mkdir(parents=True, exist_ok=True)
    record = {"suite": "gpu" if args.gpu else "cpu",
              "command": "make bench-gpu" if args.gpu else "make bench",
              "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine(), "versions": versions(), "outcomes": []}
    if args.gpu:
        nvidia = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                check=False, capture_output=True, text=True)
        record["gpu"] = "GPU: " + ", ".join(nvidia.stdout.strip().splitlines())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wengert-bench-") as work:
        for script in suite:
            if only is not None and Path(script.file).stem not in only:
                outcome = Outcome(" ".join([script.file, *script.args]), script.marker,
                                  "skipped", detail="not selected (--only)")
            else:
                outcome = run_script(script, gpu, Path(work))
            record["outcomes"].append(dataclasses.asdict(outcome))
    if not args.gpu:
        for script in GPU_SUITE:
            record["outcomes"].append(dataclasses.asdict(Outcome(
                " ".join([script.file, *script.args]), script.marker, "skipped",
                detail=f"GPU suite: {gpu or 'a GPU is here'}; run make bench-gpu")))
    record["seconds"] = time.perf_counter() - start
    saved.write_text(json.dumps(record, indent=1) + "\n")
    write_outputs(record, report, not args.no_readmes and only is None)
    failed = [o["script"] for o in record["outcomes"] if o["status"] == "failed"]
    if failed:
        print(f"[bench] FAILED: {'; '.join(failed)} (see {os.path.relpath(report, ROOT)} and "
              f"{os.path.relpath(LOGS, ROOT)}/)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
