# The two entry points of the README: `make demo` and `make test`.
# Both create .venv on first use and install every package under packages/
# in editable mode with its test extras, so a fresh machine needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := $(sort $(dir $(wildcard packages/*/pyproject.toml)))

.PHONY: demo test lint browser bench bench-gpu clean

$(STAMP): pyproject.toml requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt $(foreach p,$(PACKAGES),-e $(p)[test])
	touch $@

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/lint-imports

# The browser test of report.html (integration_tests/test_report_in_browser.py) needs
# Chromium from the system's packages: installed here where we run as root with apt-get;
# elsewhere the test skips and prints why.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the report's browser test"; \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	    >/dev/null || echo "could not install chromium: the browser test will skip"; \
	fi

test: lint browser
	$(BIN)/python -m pytest

# Not part of the two commands: the benchmark report (benchmarks/report.py).
# bench: every CPU benchmark, --quick, one at a time -> benchmarks/REPORT.md and the
# README tables. bench-gpu: the GPU suite (8 minutes on one GPU) -> REPORT_GPU.md; it uses
# GPU_PYTHON (the GPU image's python3 with jax[cuda] and cupy), not the CPU-only .venv,
# and fails, measuring nothing, where no GPU is visible.
GPU_PYTHON ?= python3

bench: $(STAMP)
	$(BIN)/python benchmarks/report.py

bench-gpu:
	$(GPU_PYTHON) benchmarks/report.py --gpu

clean:
	rm -rf $(VENV)
