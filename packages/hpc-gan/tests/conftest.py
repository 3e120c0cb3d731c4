"""Shared fixtures: the tiny preset, as an object and as an editable JSON tree, and a small
Monte Carlo dataset of it."""

import copy
import json
from importlib import resources

import pytest
from wengert.hpcgan import load_preset, simulate


@pytest.fixture(scope="session")
def tiny():
    return load_preset("tiny")


@pytest.fixture
def tiny_definition():
    """A fresh deep copy of tiny.json, for tests that break it on purpose.

    Without its PI-GAN sections (observation networks, training keys): tests that move the
    polygon would otherwise trip over wells placed for tiny's site; the PI-GAN tests read
    them from the shipped file."""
    text = (resources.files("wengert.hpcgan") / "presets" / "tiny.json").read_text()
    definition = copy.deepcopy(json.loads(text))
    del definition["observations"], definition["train"]
    return definition


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """48 realisations of ``tiny`` (simulated once per test session)."""
    folder = tmp_path_factory.mktemp("tiny-data")
    simulate(load_preset("tiny"), folder, samples=48, seed=0, workers=1, progress=False)
    return folder
