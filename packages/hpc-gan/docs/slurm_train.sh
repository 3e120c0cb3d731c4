#!/bin/bash
# Data-parallel PI-GAN training under Slurm: one replica per task, the hierarchical
# all-reduce grouping the tasks of each node (MPI.COMM_TYPE_SHARED).
# Submit with: sbatch slurm_train.sh
#SBATCH --job-name=pigan
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=8
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=pigan-%j.out

set -euo pipefail
export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
# mpi4py must be built against the MPI that srun launches (pip install mpi4py with the
# site's MPI loaded), or launch the PyPI mpich wheel's mpiexec instead of srun.
# 32 replicas: batch and physics_batch must be multiples of 32.
srun --kill-on-bad-exit=1 wengert-hpcgan train --preset hanford --out pigan-hanford \
    --backend xla --quiet --comm-timeout 600 --set batch=256 physics_batch=64
# Resume after a failure with any replica count dividing 32: add --resume.
