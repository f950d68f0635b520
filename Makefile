# The two commands of the README. Both work on a fresh machine with Python 3.11+.
#   make run   - install everything, generate + clean + export a small dataset with the embedded teacher
#   make test  - install dev dependencies and run the whole test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO   := outputs/demo

.PHONY: run test install redis-server chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama-cpp-python builds from source (about 6 minutes on 2 cores); pip caches the wheel.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -c constraints.txt -e '.[local,train,dev,redis]'
	touch $@

install: $(STAMP)

# The Redis-backed dedup tests need a real redis-server binary (Debian package).
redis-server:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

# The report's browser test loads the page in a real headless Chromium (Debian package).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

run: install
	$(BIN)/selfinstruct generate --out $(DEMO) --num-instructions 24
	$(BIN)/selfinstruct export $(DEMO) --to $(DEMO)/export/dataset
	$(BIN)/selfinstruct export $(DEMO) --format alpaca --to $(DEMO)/export/alpaca_data.json
	$(BIN)/selfinstruct cost $(DEMO) --plot $(DEMO)/cost.png
	$(BIN)/selfinstruct report $(DEMO) --out $(DEMO)/report.html
	@echo "Run and reports in $(DEMO)/ (open $(DEMO)/report.html); exported dataset and its card in $(DEMO)/export/"

test: install redis-server chromium
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) outputs build dist
