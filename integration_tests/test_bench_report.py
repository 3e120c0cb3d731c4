"""`make bench`'s report machinery on sample rows (no timing): the row schema, the
rendering of REPORT.md, the rewriting of the README tables between marker comments,
and that every benchmark script is in a suite and speaks the row protocol."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import report
from report_rows import Row, read_rows, write_rows

HELPERS = {"timing.py", "report_rows.py", "report.py"}


def sample_record(suite: str = "cpu") -> dict:
    rows = {
        "nn-models": [Row("nn", "LeNet-5, training step", 30.0, 20.0, "PyTorch eager", "ms", 1.5),
                      Row("nn", "MLP, training step", 13.0, 10.0, "PyTorch eager", "ms", 1.2)],
        "flow-solver": [Row("hpc-gan", "AMG slope", 0.97, None, "", "slope", 1.1,
                            target_on="ours", notes="1 is linear")],
    }
    outcomes = [{"script": f"{key}.py --quick", "key": key, "status": "ran", "seconds": 12.0,
                 "detail": "", "rows": [r.__dict__ for r in rs]} for key, rs in rows.items()]
    outcomes.append({"script": "pigan_comm_model.py", "key": "pigan-comm-model",
                     "status": "skipped", "seconds": 0.0, "detail": "needs mpi4py", "rows": []})
    return {"suite": suite, "command": "make bench", "date": "2026-11-30 10:00 UTC",
            "machine": {"cores": 2, "cpu": "Test CPU", "platform": "Linux x86_64",
                        "load_average": 0.5},
            "versions": {"python": "3.11", "numpy": "2.4"}, "outcomes": outcomes,
            "seconds": 600.0}


# ---- the row schema ------------------------------------------------------------------------

def test_targets_bound_the_ratio_ours_or_the_difference():
    assert Row("nn", "w", 3.0, 2.0, "p", "ms", 1.5).met is True  # ratio 1.5
    assert Row("nn", "w", 3.1, 2.0, "p", "ms", 1.5).met is False
    assert Row("ad-core", "w", 1.4, 0.4, "p", "us/op", 1.5, target_on="ours").met is True
    assert Row("ad-core", "w", 1.6, 0.4, "p", "us/op", 1.5, target_on="ours").met is False
    assert Row("xla-backend", "w", 25.0, 16.0, "p", "us", 10.0,
               target_on="difference").met is True
    assert Row("xla-backend", "w", 27.0, 16.0, "p", "us", 10.0,
               target_on="difference").met is False
    assert Row("nn", "w", 3.0, 2.0, "p", "ms").met is None
    assert Row("nn", "w", 3.0, 2.0, "p", "ms").ratio == 1.5


def test_malformed_rows_are_refused():
    with pytest.raises(ValueError, match="unknown package"):
        Row("torch", "w", 1.0, 1.0, "p", "ms")
    with pytest.raises(ValueError, match="no peer"):
        Row("nn", "w", 1.0, None, "", "ms", 1.0)  # a ratio target without a peer
    with pytest.raises(ValueError, match="target_on"):
        Row("nn", "w", 1.0, 1.0, "p", "ms", 1.0, target_on="peer")


def test_rows_round_trip_through_json(tmp_path):
    rows = sample_record()["outcomes"][0]["rows"]
    rows = [Row(**r) for r in rows]
    write_rows(str(tmp_path / "rows.json"), rows)
    assert read_rows(tmp_path / "rows.json") == rows
    write_rows(None, rows)  # no --json: nothing written, no error


# ---- REPORT.md -----------------------------------------------------------------------------

def test_report_has_one_table_per_package_with_targets_and_skips():
    text = report.render_report(sample_record())
    assert "## nn" in text and "## hpc-gan" in text
    assert "## ad-core" not in text  # no rows, no empty table
    lenet = next(line for line in text.splitlines() if "LeNet-5" in line)
    assert "30 ms" in lenet and "20 ms (PyTorch eager)" in lenet
    assert "| 1.50 | ≤ 1.50× | yes |" in lenet
    mlp = next(line for line in text.splitlines() if "MLP, training step" in line)
    assert "| 1.30 | ≤ 1.20× | **no** |" in mlp
    slope = next(line for line in text.splitlines() if "AMG slope" in line)
    assert "≤ 1.1 slope" in slope and "| — |" in slope  # no peer: no ratio
    assert "| `pigan_comm_model.py` | skipped | 0 | needs mpi4py |" in text
    assert "2 cores, Test CPU" in text and "numpy 2.4" in text and "2026-11-30" in text


# ---- README tables -------------------------------------------------------------------------

README = """# pkg

Prose before.

<!-- bench:nn-models -->
| old | hand-typed |
|---|---|
| 1 | 2 |
<!-- /bench -->

Prose between.

<!-- bench:xla-vgg19-gpu -->
a GPU table, not in this record
<!-- /bench -->

<!-- bench:summary -->
<!-- /bench -->
Prose after.
"""


def test_marked_tables_are_regenerated_and_the_prose_kept():
    text, done = report.rewrite_markers(README, sample_record(), "../../benchmarks/REPORT.md")
    assert sorted(done) == ["nn-models", "summary"]
    for prose in ("Prose before.", "Prose between.", "Prose after."):
        assert prose in text
    assert "hand-typed" not in text
    assert "| LeNet-5, training step | 30 ms | 20 ms (PyTorch eager) | 1.50 |" in text
    assert "a GPU table, not in this record" in text  # left alone
    assert "[REPORT.md](../../benchmarks/REPORT.md)" in text
    assert "| nn | 2 | 2 | 1 |" in text and "| hpc-gan | 1 | 1 | 1 |" in text
    assert "Not measured in that run (failed or skipped here): pigan_comm_model.py." in text
    # idempotent: a second rewrite of its own output changes nothing
    again, _ = report.rewrite_markers(text, sample_record(), "../../benchmarks/REPORT.md")
    assert again == text


def test_an_unknown_marker_is_an_error():
    with pytest.raises(ValueError, match="bench:nn-modles"):
        report.rewrite_markers(README.replace("nn-models", "nn-modles"), sample_record(), "x")


def test_every_readme_marker_is_known_and_closed():
    for readme in report.readmes():
        text = readme.read_text()
        opened = re.findall(r"<!-- bench:([\w-]+) -->", text)
        assert len(opened) == text.count("<!-- /bench -->"), readme
        assert len(report.MARKER.findall(text)) == len(opened), readme
        report.rewrite_markers(text, sample_record(), "x")  # raises on an unknown key


# ---- the suites ----------------------------------------------------------------------------

def test_every_benchmark_script_is_in_a_suite_and_writes_rows():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - HELPERS
    registered = {s.file for s in report.CPU_SUITE + report.GPU_SUITE}
    assert scripts <= registered, f"not in benchmarks/report.py's suites: {scripts - registered}"
    for name in scripts:
        source = (BENCHMARKS / name).read_text()
        assert "add_json_option(" in source and "write_rows(" in source, name
        assert '"--quick"' in source, name


def test_the_device_suite_fits_its_budget():
    assert sum(s.timeout_s for s in report.GPU_SUITE) <= report.GPU_BUDGET_S


def test_bench_gpu_without_a_gpu_fails_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "HERE", tmp_path)
    monkeypatch.setattr(report, "gpu_problem", lambda: "no NVIDIA driver here")
    monkeypatch.setattr(sys, "argv", ["report.py", "--gpu"])
    assert report.main() == 2
    assert "needs a CUDA GPU, and there is none: no NVIDIA driver here" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_scripts_run_on_this_checkout_with_their_thread_caps(tmp_path):
    mpi = report.Script("pigan_comm_model.py", ("--quick",), ("mpi",), mpi_ranks=2,
                        blas_threads=1)
    cmd = report.command(mpi, tmp_path / "rows.json")
    assert cmd[1:3] == ["-n", "2"] and cmd[-2:] == ["--json", str(tmp_path / "rows.json")]
    env = report.child_environment(mpi)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["PYTHONPATH"].split(":")[0] == str(ROOT / "packages" / "ad-core" / "src")
