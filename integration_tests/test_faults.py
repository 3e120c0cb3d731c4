"""Fault injection across the stack: writers killed at random points, a full disk, damaged
files for every loader, NaN in the training data, concurrent writers to one folder.

The guarantee checked throughout: a dataset or a checkpoint is either the old one or the
new one, never a mix; nothing is left behind (temporaries are removed by the next write,
worker processes die with their parent); a damaged file is refused with an error naming
it, never loaded as something else.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from wengert import nn
from wengert.hpcgan import DatasetError, PresetError, load_dataset, load_preset, simulate

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses /proc, process groups and RLIMIT_FSIZE"
)

SAMPLES = {1: 16, 2: 32}  # seed -> realisations: the two states a folder may hold
SEED = int(os.environ.get("WENGERT_FAULT_SEED", time.time_ns() % 10_000))


@pytest.fixture(scope="module")
def rand():
    print(f"fault-injection seed {SEED} (rerun with WENGERT_FAULT_SEED={SEED})")
    return random.Random(SEED)


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _group_members(pgid: int) -> list[int]:
    """Running (not zombie) processes of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _assert_group_exits(pgid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_members(pgid) == [], "processes outlived their killed parent"


def _start(script: str, *args: str, **kwargs) -> subprocess.Popen:
    """A Python child in its own process group (so its workers can be found afterwards)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


# ---- datasets ----------------------------------------------------------------------------------

SIMULATE = """
import os, signal, sys
import numpy as np
from wengert.hpcgan import load_preset, montecarlo, simulate

out, seed, samples, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if kill_at == "inside-archive":  # after the first array is written into the temporary
    write_array = np.lib.format.write_array
    def write_then_die(*args, **kwargs):
        write_array(*args, **kwargs)
        die()
    np.lib.format.write_array = write_then_die
elif kill_at == "between-renames":  # the archive is in place, metadata.json is not yet
    montecarlo._refresh_metadata_copy = die
if __name__ == "__main__":
    simulate(load_preset("tiny"), out, samples=samples, seed=seed, workers=2, progress=False)
"""


def _check_dataset(folder: Path) -> int:
    """The folder holds one complete dataset (seed 1 or 2); returns its seed."""
    dataset = load_dataset(folder)
    meta = dataset.metadata
    assert SAMPLES[meta["seed"]] == meta["samples"]
    xi = dataset.array("xi")
    expected = np.random.default_rng(meta["seed"]).standard_normal((meta["samples"], xi.shape[1]))
    assert np.array_equal(xi, expected)
    assert dataset.array("Y").shape[0] == dataset.array("u").shape[0] == meta["samples"]
    assert json.loads((folder / "metadata.json").read_text()) == meta
    return meta["seed"]


@pytest.fixture(scope="module")
def old_dataset(tmp_path_factory):
    """A complete dataset (seed 1) to be overwritten by killed writers."""
    out = tmp_path_factory.mktemp("faults") / "ds"
    simulate(load_preset("tiny"), out, samples=SAMPLES[1], seed=1, workers=1, progress=False)
    return out


@pytest.mark.parametrize("kill_at", ["random-time", "inside-archive", "between-renames"])
def test_killed_simulate_leaves_a_complete_dataset_and_no_process(
    old_dataset, tmp_path, rand, kill_at
):
    out = tmp_path / "ds"
    out.mkdir()
    for name in ("dataset.npz", "metadata.json"):
        (out / name).write_bytes((old_dataset / name).read_bytes())
    child = _start(SIMULATE, str(out), "2", str(SAMPLES[2]), kill_at)
    if kill_at == "random-time":
        time.sleep(rand.uniform(0.5, 6.0))
        child.kill()
    child.wait(timeout=120)
    assert child.returncode in (-signal.SIGKILL, 0), child.stderr.read()
    _assert_group_exits(child.pid)
    seed = _check_dataset(out)
    if kill_at == "inside-archive":
        assert seed == 1  # the previous dataset, intact
    if kill_at == "between-renames":
        assert seed == 2  # the new archive is the dataset; its metadata copy was rewritten
    # The next writer of the folder removes what the killed one left.
    simulate(load_preset("tiny"), out, samples=SAMPLES[1], seed=1, workers=1, progress=False)
    assert _temporaries(out) == [] and _check_dataset(out) == 1


def test_concurrent_writers_to_one_folder(tmp_path):
    out = tmp_path / "ds"
    children = [_start(SIMULATE, str(out), str(s), str(SAMPLES[s]), "none") for s in (1, 2)]
    for child in children:
        child.wait(timeout=120)
        assert child.returncode == 0, child.stderr.read()
    assert _temporaries(out) == []
    _check_dataset(out)


def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_during_simulate_keeps_the_old_dataset(old_dataset, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    for name in ("dataset.npz", "metadata.json"):
        (out / name).write_bytes((old_dataset / name).read_bytes())
    command = [sys.executable, "-m", "wengert.hpcgan.cli", "simulate", "--preset", "tiny",
               "--samples", "32", "--seed", "2", "--workers", "1", "--quiet", "--out", str(out)]
    result = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=_limit_file_size(64 * 1024),
        timeout=120, check=False,
    )
    assert result.returncode != 0
    assert "File too large" in result.stderr and "ulimit" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and str(out) in result.stderr
    assert _temporaries(out) == [] and _check_dataset(out) == 1


# ---- checkpoints -------------------------------------------------------------------------------

SAVE_FOREVER = """
import sys
import numpy as np
from wengert import nn

path = sys.argv[1]
model = nn.Dense(1024, 2048)
for version in range(1, 10_000):
    model = model.replace(weight=np.full((1024, 2048), version, np.float32),
                          bias=np.full(2048, version, np.float32))
    nn.save(path, model)
    print(version, flush=True)
"""


def _checkpoint_version(path: Path) -> int:
    like = nn.Dense(1024, 2048)
    loaded = nn.load(path, like)  # strict, checksums verified
    version = loaded.weight[0, 0]
    assert np.all(loaded.weight == version) and np.all(loaded.bias == version)
    return int(version)


@pytest.mark.parametrize("name", ["big.safetensors", "big.npz"])
def test_killed_save_leaves_a_complete_checkpoint(tmp_path, rand, name):
    path = tmp_path / name
    child = _start(SAVE_FOREVER, str(path))
    assert child.stdout.readline().strip() == "1"  # one complete checkpoint exists
    time.sleep(rand.uniform(0.0, 1.5))
    child.kill()
    child.wait()
    assert _checkpoint_version(path) >= 1
    nn.save(path, nn.Dense(2, 2))  # the next save removes the killed writer's temporary
    assert _temporaries(tmp_path) == []


def test_concurrent_saves_to_one_path(tmp_path):
    path = tmp_path / "big.safetensors"
    script = SAVE_FOREVER.replace("range(1, 10_000)", "range(1, 4)")
    children = [_start(script, str(path)) for _ in range(3)]
    for child in children:
        child.wait(timeout=120)
        assert child.returncode == 0, child.stderr.read()
    assert _checkpoint_version(path) in (1, 2, 3) and _temporaries(tmp_path) == []


def test_disk_full_during_save_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "big.safetensors"
    nn.save(path, nn.Dense(4, 4))
    before = path.read_bytes()
    script = """
        import sys
        from wengert import nn
        try:
            nn.save(sys.argv[1], nn.Dense(1024, 1024))
        except OSError as exc:
            print(exc)
            sys.exit(3)
    """
    child = _start(script, str(path), preexec_fn=_limit_file_size(256 * 1024))
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 3 and f"could not write {path}: File too large" in out
    assert path.read_bytes() == before and _temporaries(tmp_path) == []


# ---- damaged files, for every loader -----------------------------------------------------------

def _damaged_versions(data: bytes, rand: random.Random, count: int = 12):
    """Truncations at random points (and the empty file), and single flipped bytes."""
    yield "empty", b""
    for _ in range(count):
        cut = rand.randrange(1, len(data))
        yield f"truncated at {cut}", data[:cut]
        at = rand.randrange(len(data))
        flipped = bytearray(data)
        flipped[at] ^= 1 << rand.randrange(8)
        yield f"bit flipped at byte {at}", bytes(flipped)


@pytest.mark.parametrize("name", ["model.safetensors", "model.npz"])
def test_damaged_checkpoints_are_refused_or_intact(tmp_path, rand, name):
    rng = np.random.default_rng(0)
    model = nn.Chain(nn.Dense(8, 16, rng=rng), nn.BatchNorm(16), nn.Dense(16, 2, rng=rng))
    good = nn.save(tmp_path / name, model).read_bytes()
    expected = nn.state_dict(model)
    for what, data in _damaged_versions(good, rand):
        path = tmp_path / f"damaged{Path(name).suffix}"
        path.write_bytes(data)
        try:
            loaded = nn.load(path, model)
        except ValueError as exc:
            assert str(path) in str(exc), (what, exc)
            continue
        # A flip in padding or in an unchecked header byte may leave the content intact.
        got = nn.state_dict(loaded)
        assert all(np.array_equal(got[k], expected[k]) for k in expected), what


def test_damaged_datasets_are_refused_or_intact(old_dataset, tmp_path, rand):
    good = (old_dataset / "dataset.npz").read_bytes()
    reference = load_dataset(old_dataset)
    names = list(reference.metadata["arrays"])
    for what, data in _damaged_versions(good, rand):
        folder = tmp_path / "damaged"
        folder.mkdir(exist_ok=True)
        (folder / "dataset.npz").write_bytes(data)
        try:
            dataset = load_dataset(folder)
            arrays = {name: dataset.array(name) for name in names}
        except DatasetError as exc:
            assert str(folder) in str(exc), (what, exc)
            continue
        for name in names:
            assert np.array_equal(arrays[name], reference.array(name), equal_nan=True), what


def test_damaged_presets_are_refused(tmp_path, rand):
    from importlib import resources

    good = (resources.files("wengert.hpcgan") / "presets" / "tiny.json").read_bytes()
    for what, data in _damaged_versions(good, rand, count=6):
        if what.startswith("bit"):
            continue  # a flipped digit is a different, valid preset
        path = tmp_path / "damaged.json"
        path.write_bytes(data)
        with pytest.raises(PresetError, match="damaged.json"):
            load_preset(str(path))


# ---- training ----------------------------------------------------------------------------------

def test_nan_in_the_training_data_stops_training_and_keeps_the_model(rand):
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    row = rand.randrange(16, 64)  # not in the first batch
    x[row, rand.randrange(4)] = rand.choice([np.nan, np.inf])
    model = nn.Chain(nn.Dense(4, 8, nn.relu, rng=rng), nn.BatchNorm(8), nn.Dense(8, 1, rng=rng))
    before = {k: v.copy() for k, v in nn.state_dict(model).items()}
    with pytest.raises(nn.NonFiniteError, match=rf"epoch 1, step {row // 16 + 1}:"):
        nn.train(model, lambda m, x, y: nn.mse(m(x), y), nn.DataLoader((x, y), 16),
                 nn.Adam(1e-3), epochs=2, progress=False)
    after = nn.state_dict(model)
    assert all(np.array_equal(after[k], before[k]) for k in before)
