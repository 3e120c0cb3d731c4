"""A character-level LSTM language model on Shakespeare's Sonnet 18
(public domain, bundled as examples/data/sonnet18.txt).

Embedding -> LSTM -> Dense predicts the next character of every position of
32-character windows. Seeded: the mean training loss falls below
``TARGET_LOSS`` nats per character (from ln(vocab) ~ 3.5 at the start), and
the model then recites the sonnet from its first words.

    python examples/char_lstm.py [--epochs 25] [--quiet]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from wengert import nn

TEXT = Path(__file__).with_name("data") / "sonnet18.txt"
TARGET_LOSS = 0.5
WINDOW, BATCH, HIDDEN = 24, 32, 96


def windows(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text])
    starts = np.arange(len(ids) - WINDOW)
    x = np.stack([ids[s:s + WINDOW] for s in starts])
    y = np.stack([ids[s + 1:s + WINDOW + 1] for s in starts])
    return x, y, vocab


def model(vocab: int, rng: np.random.Generator) -> nn.Chain:
    return nn.Chain(nn.Embedding(vocab, 24, rng=rng), nn.LSTM(24, HIDDEN, rng=rng),
                    nn.Dense(HIDDEN, vocab, rng=rng))


def sample(m: nn.Chain, vocab: list[str], prompt: str, n: int) -> str:
    """Greedy continuation of ``prompt``."""
    ids = [vocab.index(c) for c in prompt]
    for _ in range(n):
        ids.append(int(np.argmax(m(np.array([ids[-WINDOW:]]))[0, -1])))
    return "".join(vocab[i] for i in ids)


def main(epochs: int = 25, quiet: bool = False, seed: int = 0) -> tuple[float, float, str]:
    """Train; return (mean loss of the last epoch, seconds, a sample)."""
    x, y, vocab = windows(TEXT.read_text())
    rng = np.random.default_rng(seed)
    data = nn.DataLoader((x, nn.onehot(y, len(vocab))), BATCH, shuffle=True, rng=rng)
    losses = []
    start = time.perf_counter()
    with threadpool_limits(1, "blas"):  # small matrices: threads only add overhead
        trained, _ = nn.train(model(len(vocab), rng),
                              lambda m, x, y: nn.logitcrossentropy(m(x), y), data,
                              nn.Adam(1e-2), epochs=epochs, progress=not quiet,
                              callbacks=[lambda info: info.end_of_epoch and
                                         losses.append(info.history[-1])])
        seconds = time.perf_counter() - start
        text = sample(trained, vocab, "Shall I compare", 60)
    if not quiet:
        print(f"loss {losses[-1]:.3f} nats/char after {epochs} epochs in {seconds:.1f} s "
              f"(target < {TARGET_LOSS})\n{text}")
    return losses[-1], seconds, text


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    main(args.epochs, args.quiet)
