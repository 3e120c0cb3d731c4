"""Weak and strong scaling of distributed PI-GAN training: a thin caller of
``wengert-hpcgan bench`` (the code lives in ``wengert.hpcgan.bench``; see "Scaling study"
in packages/hpc-gan/README.md).  Arguments are passed through, e.g.

    python benchmarks/pigan_scaling.py --ranks 1 2 --markdown scaling.md
"""

import sys

from wengert.hpcgan.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
