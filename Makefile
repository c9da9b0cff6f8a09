# The README's two commands: `make demo` and `make test`. Both set up what is missing.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup system venv test lint typecheck unit demo bench clean

setup: system venv

system:
	@bash scripts/setup-system.sh

venv:
	@bash scripts/setup-venv.sh

lint: venv
	$(VENV)/bin/ruff check sideeye_tui tests bench
	$(VENV)/bin/mypy

test: setup lint
	SIDEEYE_REQUIRE_ALL=1 $(VENV)/bin/pytest -q -ra

demo: setup
	@bash scripts/demo.sh

bench: setup
	$(PY) -m bench.pause --goroutines 1000,10000,100000

clean:
	rm -rf $(VENV) tests/go/.cache
