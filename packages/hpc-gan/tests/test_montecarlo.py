"""Monte Carlo datasets: content, determinism, atomic writes, refusals, figures and CLI."""

import json
import zipfile
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest
from wengert.hpcgan import (
    DatasetError,
    FlowSystem,
    SimulationError,
    load_dataset,
    montecarlo,
    simulate,
)
from wengert.hpcgan.cli import main
from wengert.hpcgan.presets import parse_preset

SAMPLES = 40


@pytest.fixture(scope="module")
def dataset(tiny, tmp_path_factory):
    return simulate(
        tiny, tmp_path_factory.mktemp("tiny"), samples=SAMPLES, seed=5, workers=1, progress=False
    )


def test_dataset_content_is_consistent(tiny, dataset):
    meta, grid, site = dataset.metadata, tiny.site.grid, tiny.site
    Y, u = dataset.array("Y"), dataset.array("u")
    assert Y.shape == u.shape == (SAMPLES, grid.ny, grid.nx)
    assert np.array_equal(np.isnan(Y[0]), ~grid.mask) and np.array_equal(
        dataset.array("mask"), grid.mask
    )
    kl = meta["field"]["kl"]
    assert (
        dataset.array("xi").shape == (SAMPLES, kl["modes"])
        and kl["retained_variance_fraction"] >= 0.9
    )
    assert meta["seed"] == 5 and meta["samples"] == SAMPLES and meta["preset"] == "tiny"
    assert meta["software"]["wengert-hpcgan"] == "0.1.0"
    assert meta["solver"]["max_relative_mass_imbalance"] < 1e-10
    # Observations are the fields in the wells' cells.
    rows, cols = np.nonzero(grid.mask)
    cells = grid.locate(site.wells.head)
    assert np.array_equal(dataset.array("u_obs"), u[:, rows[cells], cols[cells]])
    cells = grid.locate(site.wells.conductivity)
    assert np.array_equal(dataset.array("Y_obs"), Y[:, rows[cells], cols[cells]])
    # Moments are those of the stored realisations.
    assert np.allclose(dataset.array("u_mean"), u.mean(axis=0), equal_nan=True)
    assert np.allclose(dataset.array("Y_std"), Y.std(axis=0, ddof=1), equal_nan=True)
    # Each stored head solves the flow problem for its stored conductivity.
    system = FlowSystem(grid, site.boundary_conditions(), site.source())
    k = 7
    assert np.array_equal(u[k][grid.mask], system.solve(np.exp(Y[k][grid.mask]), "direct"))
    assert json.loads((dataset.folder / "metadata.json").read_text()) == meta


def test_rerun_is_bit_identical_for_any_worker_count(tiny, dataset, tmp_path):
    again = simulate(tiny, tmp_path / "again", samples=SAMPLES, seed=5, workers=2, progress=False)
    for name in ("dataset.npz", "metadata.json"):
        assert (again.folder / name).read_bytes() == (dataset.folder / name).read_bytes()
    other = simulate(tiny, tmp_path / "other", samples=SAMPLES, seed=6, workers=1, progress=False)
    assert not np.array_equal(other.array("Y"), dataset.array("Y"), equal_nan=True)


def test_amg_datasets_are_bit_identical_for_any_worker_count(tiny, tmp_path):
    pytest.importorskip("pyamg")
    runs = [
        simulate(tiny, tmp_path / f"w{w}", samples=32, workers=w, solver="amg", progress=False)
        for w in (1, 2)
    ]
    assert runs[0].metadata["solver"]["method"] == "amg"
    assert (runs[0].folder / "dataset.npz").read_bytes() == (
        runs[1].folder / "dataset.npz"
    ).read_bytes()


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class _InterruptedBar:
    """A progress bar that is hit by Ctrl-C after the first finished chunk."""

    def __init__(self, *args, **kwargs):
        self.updates = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        self.updates += 1
        if self.updates == 2:
            raise KeyboardInterrupt


def test_interrupted_solve_leaves_no_partial_dataset(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(montecarlo, "tqdm", _InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        simulate(tiny, tmp_path / "fresh", samples=SAMPLES, workers=2, progress=False)
    assert _files(tmp_path / "fresh") == []


class _DeadPool:
    """A process pool whose workers were all killed (e.g. by the out-of-memory killer)."""

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, fn, *args):
        future = Future()
        future.set_exception(BrokenProcessPool("a worker was killed"))
        return future

    def shutdown(self, **kwargs):
        pass


def test_dead_worker_is_a_clear_error_and_leaves_no_dataset(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(montecarlo, "ProcessPoolExecutor", _DeadPool)
    with pytest.raises(SimulationError, match="a solver process died.*fewer --workers"):
        simulate(tiny, tmp_path / "dead", samples=SAMPLES, workers=2, progress=False)
    assert _files(tmp_path / "dead") == []


def test_interrupted_write_keeps_the_previous_dataset(tiny, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    simulate(tiny, out, samples=16, seed=1, workers=1, progress=False)
    before = (out / "dataset.npz").read_bytes()

    def broken_write(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        zipfile.ZipFile, "writestr", broken_write
    )  # dies after the arrays, before the metadata
    with pytest.raises(KeyboardInterrupt):
        simulate(tiny, out, samples=16, seed=2, workers=1, progress=False)
    assert _files(out) == ["dataset.npz", "metadata.json"]
    assert (out / "dataset.npz").read_bytes() == before


def test_folder_of_another_preset_is_refused(tiny_definition, dataset):
    tiny_definition["name"] = "other"
    with pytest.raises(DatasetError, match="already holds a dataset of preset 'tiny', not 'other'"):
        simulate(
            parse_preset(tiny_definition), dataset.folder, samples=2, workers=1, progress=False
        )


def test_bad_arguments_and_folders(tiny, tmp_path):
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        simulate(tiny, tmp_path / "x", samples=0, progress=False)
    with pytest.raises(DatasetError, match="no dataset in"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable wengert-hpcgan dataset"):
        load_dataset(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetError, match="is not a folder"):
        simulate(tiny, tmp_path / "file", samples=1, progress=False)


def test_cli_simulate_and_show(tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "simulate",
                "--preset",
                "tiny",
                "--samples",
                "16",
                "--seed",
                "3",
                "--out",
                str(out),
                "--workers",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert "wrote 16 realisations of 'tiny'" in capsys.readouterr().out
    assert main(["show", str(out)]) == 0
    for name in ("site.png", "realization.png", "statistics.png"):
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    assert main(["simulate", "--preset", "smal", "--out", str(tmp_path)]) == 2
    assert "did you mean 'small'" in capsys.readouterr().err
    assert main(["show", str(tmp_path)]) == 2
    assert "no dataset in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--preset", "tiny", "--samples", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_archive_is_the_truth_and_a_stale_metadata_copy_is_rewritten(tiny, tmp_path):
    """A writer killed between the archive's rename and the JSON's leaves the old JSON."""
    out = tmp_path / "ds"
    simulate(tiny, out, samples=16, seed=1, workers=1, progress=False)
    old_json = (out / "metadata.json").read_bytes()
    simulate(tiny, out, samples=17, seed=2, workers=1, progress=False)
    (out / "metadata.json").write_bytes(old_json)  # the state such a kill leaves
    dataset = load_dataset(out)
    assert dataset.metadata["samples"] == 17 and dataset.array("Y").shape[0] == 17
    assert json.loads((out / "metadata.json").read_text()) == dataset.metadata
    (out / "metadata.json").unlink()
    assert json.loads((load_dataset(out).folder / "metadata.json").read_text())["seed"] == 2


def _corrupt_member(archive, member):
    """Flip one byte inside a stored member's data: its CRC no longer matches."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(member)
    data = bytearray(archive.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF  # past the local header
    archive.write_bytes(bytes(data))


def test_bad_crc_is_a_dataset_error_and_a_clean_cli_exit(tiny, tmp_path, capsys):
    out = tmp_path / "crc"
    simulate(tiny, out, samples=16, workers=1, progress=False)
    _corrupt_member(out / "dataset.npz", "Y.npy")
    with pytest.raises(DatasetError, match=r"dataset.npz is damaged.*simulate' again"):
        load_dataset(out).array("Y")
    assert main(["show", str(out)]) == 2
    err = capsys.readouterr().err
    assert "dataset.npz is damaged" in err and "Traceback" not in err


def test_a_damaged_compression_field_is_a_dataset_error(tiny, tmp_path):
    """A flipped bit in a member's compression-method field makes zipfile raise
    NotImplementedError ("compression method not supported"): still a damaged file."""
    out = tmp_path / "method"
    simulate(tiny, out, samples=16, workers=1, progress=False)
    archive = out / "dataset.npz"
    data = bytearray(archive.read_bytes())
    # the central directory's record of Y.npy: its compression method is at offset 10
    record = data.index(b"PK\x01\x02")
    while data[record + 46:record + 46 + len(b"Y.npy")] != b"Y.npy":
        record = data.index(b"PK\x01\x02", record + 1)
    data[record + 10] ^= 0x40
    archive.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"dataset.npz is damaged"):
        load_dataset(out).array("Y")


def _no_simulation(*args, **kwargs):
    raise AssertionError("the output folder must be checked before any simulation")


def test_out_under_a_file_is_refused_before_simulating(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(montecarlo, "karhunen_loeve", _no_simulation)
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetError, match="file is a file, not a folder; choose another --out"):
        simulate(tiny, tmp_path / "file" / "ds", samples=2, progress=False)
    args = ["simulate", "--preset", "tiny", "--out", str(tmp_path / "file" / "ds"), "--quiet"]
    assert main(args) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_show_out_under_a_file_is_refused(dataset, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["show", str(dataset.folder), "--out", str(tmp_path / "file" / "figs")]) == 2
    assert "is a file, not a folder; choose another --out" in capsys.readouterr().err


def test_disk_full_while_writing_is_a_clean_cli_exit(tmp_path, monkeypatch, capsys):
    def full(path, write):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(montecarlo, "write_atomically", full)
    args = ["simulate", "--preset", "tiny", "--samples", "16", "--workers", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device: the disk is full" in err and str(tmp_path / "full") in err


def test_more_samples_than_memory_are_refused_up_front(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(montecarlo, "karhunen_loeve", _no_simulation)
    monkeypatch.setattr(montecarlo, "_available_memory", lambda: 2**30)
    args = ["simulate", "--preset", "tiny", "--samples", "1000000000000", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "big")]) == 2
    assert "--samples 1000000000000 of preset 'tiny' needs about" in capsys.readouterr().err


def test_memory_error_is_a_clean_cli_exit(tmp_path, monkeypatch, capsys):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(montecarlo, "karhunen_loeve", exhausted)
    assert main(["simulate", "--preset", "tiny", "--out", str(tmp_path / "m"), "--quiet"]) == 1
    assert "out of memory; use fewer --samples" in capsys.readouterr().err


def test_verify_refuses_grids_without_an_order(capsys):
    with pytest.raises(SystemExit):
        main(["verify", "--sizes", "1"])
    assert "must be at least 2 cells per side, got 1" in capsys.readouterr().err
    assert main(["verify", "--sizes", "4", "4"]) == 2
    assert "grid sizes must be distinct" in capsys.readouterr().err
