# FlowForge — the two commands a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
SCALE  ?= 1
DEMO_DIR ?= flowforge-demo

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@$(BIN)/pip install --quiet mysqlclient 2>/dev/null || \
	  echo "note: mysqlclient not built (no MariaDB client headers); MySQL reads over TLS use PyMySQL"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flowforge demo --dir $(DEMO_DIR) --scale $(SCALE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
