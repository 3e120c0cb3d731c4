"""``wengert-hpcgan bench``: the scaling study of distributed PI-GAN training — step
time, FLOPs (counted and XLA's), communication fraction and scaling efficiency under
``mpiexec`` (`scaling`), and an α–β performance model extrapolated to 27,500 GPUs
(`model`).  See "Scaling study" in the package README."""
