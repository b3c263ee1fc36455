# make demo: set up and train on the built-in demo capture.  make test: set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.fxforge-installed

.PHONY: install demo test test-all bench clean

$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[test]" $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/fxforge run configs/wave_lstm.toml

# Two workers, one test file each at a time: most tests wait on a single-threaded `fxforge`
# subprocess, so the two cores both work.
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist loadfile

test: install
	$(PYTEST)

# Also the slow cases (the JUCE build when JUCE and RTNeural are present).
test-all: install
	FXFORGE_SLOW=1 $(PYTEST)

bench: install
	$(BIN)/python bench/bench_wave_lstm.py

clean:
	rm -rf $(VENV) runs build .pytest_cache
