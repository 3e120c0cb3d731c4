"""Shared fixtures: the tiny preset, as an object and as an editable JSON tree."""

import copy
import json
from importlib import resources

import pytest
from wengert.hpcgan import load_preset


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
