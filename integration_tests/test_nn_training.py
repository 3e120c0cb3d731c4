"""Real training with wengert.nn: the digits CNN and the character LSTM
examples reach their stated targets, reproducibly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_cnn_reaches_97_percent_reproducibly():
    pytest.importorskip("sklearn", reason="the digits data ship with scikit-learn")
    digits = _example("digits_cnn")
    accuracy, _ = digits.main(quiet=True)
    assert accuracy >= 0.97
    again, _ = digits.main(quiet=True)
    assert again == accuracy  # seeded split, initialisation and shuffling


def test_char_lstm_loss_falls_below_its_target():
    pytest.importorskip("threadpoolctl")
    lstm = _example("char_lstm")
    loss, _, text = lstm.main(quiet=True)
    assert loss < lstm.TARGET_LOSS
    assert text.startswith("Shall I compare thee")
