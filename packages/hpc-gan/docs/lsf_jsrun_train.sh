#!/bin/bash
# Data-parallel PI-GAN training on a Summit-style LSF machine: 6 resource sets per node,
# one rank each (one rank per GPU of the node), so each node is one group of the
# hierarchical all-reduce.
# Submit with: bsub lsf_jsrun_train.sh
#BSUB -J pigan
#BSUB -nnodes 4
#BSUB -W 120
#BSUB -o pigan-%J.out

set -euo pipefail
NODES=$(sort -u "$LSB_DJOB_HOSTFILE" | grep -v batch | wc -l)
RANKS=$((NODES * 6))
# -g 1: each rank sees its own GPU and binds to it (--device gpu); gradients go through
# NCCL (cupy with NCCL installed), else through host memory over MPI (the job says which).
# Written, not yet run on such a machine: try benchmarks/gpu_pigan_check.sh first.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
jsrun -n "$RANKS" -r 6 -a 1 -c 7 -g 1 \
    wengert-hpcgan train --preset hanford --out pigan-hanford --backend xla --device gpu \
    --precision bf16 --quiet --comm-timeout 600 \
    --set batch=$((RANKS * 8)) physics_batch=$((RANKS * 2))
