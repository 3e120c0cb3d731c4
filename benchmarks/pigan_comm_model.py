"""The α–β performance model of the data-parallel step, fitted here and extrapolated to
27,500 GPUs (hierarchical versus flat all-reduce): a thin caller of
``wengert-hpcgan bench model`` (see "Scaling study" in packages/hpc-gan/README.md).
Arguments are passed through, e.g.

    python benchmarks/pigan_comm_model.py --png comm_model.png
"""

import sys

from wengert.hpcgan.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "model", *sys.argv[1:]]))
