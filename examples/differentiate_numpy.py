"""wengert.ad differentiates a plain
NumPy program with a loop, a recursive call and an in-place update, and the
result is checked against central finite differences.

Run with ``.venv/bin/python examples/differentiate_numpy.py``.
"""

from __future__ import annotations

import numpy as np
from wengert import ad


def horner(coeffs, x):
    """A recursive polynomial evaluation (written in plain NumPy)."""
    if len(coeffs) == 1:
        return coeffs[0] * np.ones_like(x)
    return coeffs[0] + x * horner(coeffs[1:], x)


def simulate(theta, steps=50, dt=0.05):
    """Damped oscillator by explicit Euler: a loop with in-place updates."""
    # Multiplying by a traced value makes `state` a traced array (a mutable handle), so
    # the element writes below are differentiated; a plain np.zeros(2) would refuse them.
    state = np.zeros(2) * theta[0]
    state[0] = 1.0
    for _ in range(steps):
        force = -theta[0] * state[0] - theta[1] * state[1]
        state[0] += dt * state[1]
        state[1] += dt * force
    return state


def program(theta):
    trajectory_end = simulate(theta)
    correction = horner([0.5, -0.2, 0.1], theta)  # recursive
    return np.sum(trajectory_end ** 2) + np.sum(np.sin(correction))


def main() -> None:
    theta = np.array([2.0, 0.3])
    (grad,) = ad.gradient(program, theta)
    eps = 1e-6
    fd = np.array([(program(theta + eps * e) - program(theta - eps * e)) / (2 * eps)
                   for e in np.eye(2)])
    print("program(theta)          =", program(theta))
    print("wengert.ad gradient     =", grad)
    print("finite differences      =", fd)
    print("max abs difference      =", np.max(np.abs(grad - fd)))
    if not np.allclose(grad, fd, rtol=1e-5, atol=1e-7):
        raise SystemExit("gradient does not match finite differences")
    print("ok: the gradient of an unmodified NumPy program matches finite differences")


if __name__ == "__main__":
    main()
