"""Shared helpers: the PyTorch peer (skipped, with the reason, only where it
cannot be imported) and layout conversions between NHWC and NCHW."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


@pytest.fixture(scope="session")
def torch():
    try:
        import torch
    except ImportError as exc:
        pytest.skip(f"PyTorch cannot be imported ({exc}); install the test extra "
                    "(pip install 'wengert-nn[test]') to run the comparisons")
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)  # also PyTorch's scalar optimiser state (NAdam)
    return torch


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tl(torch):
    """Layout helpers bound to torch: ``tl.to(x)``, ``tl.back(t)``, ``tl.kernel(w)``."""
    return SimpleNamespace(to=lambda x, channels_last=True: to_torch(torch, x, channels_last),
                           back=from_torch, kernel=kernel_from_torch)


def to_torch(torch, x, channels_last: bool = True):
    """A channels-last array as a channels-first float64 tensor."""
    a = np.moveaxis(np.asarray(x), -1, 1) if channels_last and np.ndim(x) > 2 else np.asarray(x)
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True)


def from_torch(t, channels_last: bool = True):
    a = t.detach().numpy()
    return np.moveaxis(a, 1, -1) if channels_last and a.ndim > 2 else a


def kernel_from_torch(w):
    """PyTorch conv kernel (O, I, K...) -> ours (K..., I, O); also maps a
    ConvTranspose kernel (I, O/g, K...) to ours (K..., O/g, I)."""
    return np.ascontiguousarray(np.moveaxis(w.detach().numpy(), (0, 1), (-1, -2)))
