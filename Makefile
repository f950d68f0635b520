# The two commands of the README. Both work on a fresh machine with Python 3.11+.
#   make run   - install everything, generate + clean + export a small dataset with the embedded teacher
#   make test  - install dev dependencies, check the formatting (ruff) and run the whole test suite

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

# llama-cpp-python has no binary wheel: pip builds it from source (6-16 minutes on 2 cores), and by
# default with -march=native. On Intel CPUs with AMX that turns on ggml's AMX kernels, which GCC 12
# miscompiles (the server segfaults at the first real prompt), and a native wheel only runs on CPUs
# like the one that built it. So we build a portable wheel (GGML_NATIVE=OFF: AVX2 on x86-64) once
# into a folder keyed by those flags, and install that very file. pip's own wheel cache is keyed
# by the source alone and could hand back a native build made earlier, hence --no-cache-dir. The
# folder is named after the pinned version, so a new pin builds anew.
LLAMA_CPP_FLAGS  := -DGGML_NATIVE=OFF
LLAMA_CPP        := $(shell sed -n 's/^\(llama-cpp-python==.*\)/\1/p' constraints.txt)
LLAMA_CPP_WHEELS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/selfinstruct/wheels/$(subst ==,-,$(LLAMA_CPP))-portable

$(LLAMA_CPP_WHEELS)/.built: | $(BIN)/python
	rm -rf $(LLAMA_CPP_WHEELS) && mkdir -p $(LLAMA_CPP_WHEELS)
	CMAKE_ARGS="$(LLAMA_CPP_FLAGS)" $(BIN)/pip wheel --no-cache-dir --no-deps --wheel-dir $(LLAMA_CPP_WHEELS) '$(LLAMA_CPP)'
	touch $@

$(STAMP): pyproject.toml constraints.txt $(LLAMA_CPP_WHEELS)/.built | $(BIN)/python
	$(BIN)/pip install --force-reinstall --no-deps --no-index --find-links $(LLAMA_CPP_WHEELS) '$(LLAMA_CPP)'
	$(BIN)/pip install -c constraints.txt --find-links $(LLAMA_CPP_WHEELS) -e '.[local,train,dev,redis,ray,semantic]'
	$(BIN)/python -m selfinstruct teacher check
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
	$(BIN)/selfinstruct export $(DEMO) --to $(DEMO)/export/dataset --overwrite
	$(BIN)/selfinstruct export $(DEMO) --format alpaca --to $(DEMO)/export/alpaca_data.json --overwrite
	$(BIN)/selfinstruct cost $(DEMO) --plot $(DEMO)/cost.png
	$(BIN)/selfinstruct report $(DEMO) --out $(DEMO)/report.html
	@echo "Run and reports in $(DEMO)/ (open $(DEMO)/report.html); exported dataset and its card in $(DEMO)/export/"

test: install redis-server chromium
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) outputs build dist
