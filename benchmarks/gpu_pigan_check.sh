#!/usr/bin/env bash
# The PI-GAN's GPU path under MPI, for a machine with GPUs (not run in CI; no GPU there).
#
#   bash benchmarks/gpu_pigan_check.sh [RANKS]        # default: 2 ranks, or 1 with 1 GPU
#
# Runs, each under a timeout, from the repository root with the project's environment:
#   1. the NCCL hierarchical all-reduce against a flat MPI Allreduce (mpiexec -n RANKS,
#      one GPU per rank; packages/hpc-gan/tests/mpi/check_nccl.py);
#   2. `wengert-hpcgan train --device gpu` on tiny under mpiexec, eager (CuPy) and
#      compiled (XLA), float32 and bf16, data-parallel; then --placement split;
#   3. the same run on the CPU, to compare the first iterations' losses.
# Prints one line per check ("ok:" or "FAILED:") and the gradient all-reduce chosen
# (NCCL, or the host fallback with its reason). Exit status: the number of failures.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
MPIEXEC=${MPIEXEC:-$(dirname "$(command -v "$PY")")/mpiexec}
[ -x "$MPIEXEC" ] || MPIEXEC=mpiexec
GPUS=$("$PY" -c "import cupy; print(cupy.cuda.runtime.getDeviceCount())" 2>/dev/null || echo 0)
RANKS=${1:-$(( GPUS >= 2 ? 2 : 1 ))}
WORK=$(mktemp -d)
FAILED=0
export XLA_PYTHON_CLIENT_PREALLOCATE=false OMP_NUM_THREADS=1
echo "GPUs visible: $GPUS; ranks: $RANKS; launcher: $MPIEXEC; scratch: $WORK"
"$PY" -c "import cupy, cupy.cuda.nccl as n; print('cupy', cupy.__version__, 'NCCL', n.get_version())" \
    || echo "note: cupy or its NCCL is missing: the runs below take the MPI fallback"

check() {  # check NAME TIMEOUT COMMAND...
    local name=$1 limit=$2; shift 2
    if timeout "$limit" "$@" > "$WORK/$name.log" 2>&1; then
        echo "ok: $name"; grep -h "gradient all-reduce" "$WORK/$name.log" | head -1
    else
        echo "FAILED: $name (exit $?; log $WORK/$name.log)"; tail -15 "$WORK/$name.log"
        FAILED=$((FAILED + 1))
    fi
}

if [ "$GPUS" -ge 1 ]; then  # one rank per GPU (with 1 GPU: 1-rank NCCL communicators)
    check nccl_allreduce 300 "$MPIEXEC" -n "$RANKS" "$PY" packages/hpc-gan/tests/mpi/check_nccl.py
else
    echo "skipped: nccl_allreduce (no GPU visible)"
fi

"$PY" -m wengert.hpcgan.cli simulate --preset tiny --samples 64 --out "$WORK/data" --quiet > /dev/null
TRAIN=("$PY" -m wengert.hpcgan.cli train --preset tiny --data "$WORK/data" --steps 20 --quiet
       --set log_every=1)
check eager_float32 600 "$MPIEXEC" -n "$RANKS" "${TRAIN[@]}" --device gpu --backend eager --out "$WORK/eager32"
check xla_float32 600 "$MPIEXEC" -n "$RANKS" "${TRAIN[@]}" --device gpu --backend xla --out "$WORK/xla32"
check xla_bf16 600 "$MPIEXEC" -n "$RANKS" "${TRAIN[@]}" --device gpu --backend xla --precision bf16 --out "$WORK/xlabf16"
check cpu_float32 600 "$MPIEXEC" -n "$RANKS" "${TRAIN[@]}" --device cpu --backend xla --out "$WORK/cpu32"
# Two ranks (generators, critic); with one GPU they share it and take the MPI fallback.
check xla_split 600 "$MPIEXEC" -n 2 "${TRAIN[@]}" --device gpu --backend xla --placement split --out "$WORK/split"

# The GPU runs must follow the CPU run: the same seed, the same batches.
check compare_losses 60 "$PY" - "$WORK" <<'PYEOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
def rows(name):
    return [json.loads(l) for l in (work / name / "metrics.jsonl").read_text().splitlines()]
cpu = rows("cpu32")
for name, tolerance in (("eager32", 1e-3), ("xla32", 1e-3), ("xlabf16", 5e-2)):
    if not (work / name / "metrics.jsonl").exists():
        continue
    worst = max(abs(a[k] - b[k]) / (abs(b[k]) + 1e-2) for a, b in zip(rows(name)[:5], cpu[:5])
                for k in ("pde", "bc", "wasserstein", "adversarial"))
    print(f"{name}: first 5 iterations within {worst:.1e} of the CPU run (allowed {tolerance})")
    assert worst < tolerance, name
PYEOF
echo "$FAILED check(s) failed"
exit "$FAILED"
