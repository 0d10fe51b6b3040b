# Two commands do all set-up: `make book` and `make test` (each creates .venv with pinned dependencies if needed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TORCH  := torch==2.13.0

.PHONY: book book-clean test bench lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)            # first, exact pin: never let pip pick another torch
	$(BIN)/python -m pip install -q -r requirements.lock $(TORCH)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m sdl_paper.book.bookexec --install-kernel   # no "running over TCP" line per chapter
	touch $(STAMP)

## Execute every chapter (cached: unchanged notebooks are not re-run; two at a time) and write the static site to
## _build/html.
book: $(STAMP)
	$(BIN)/python -m sdl_paper.book.bookexec --cache _build/.jupyter_cache
	$(BIN)/jupyter-book build -W --keep-going .
	@echo; echo "Book written to _build/html. Open: file://$(CURDIR)/_build/html/index.html"

## The same from an empty _build (what CI-grade builds use; needed after editing sdl_paper, which the cache ignores).
book-clean:
	rm -rf _build
	$(MAKE) book

## Unit tests, nbval over every notebook with smoke parameters, and a smoke build of the book with -W.
test: $(STAMP)
	$(BIN)/python -m pytest

## Training speed against SAELens 6.54.12 (its own environment, .venv-bench); writes benchmarks/RESULTS.md, and
## the sparse kernels against what each replaces: benchmarks/KERNELS.md.
.venv-bench/.stamp:
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q --upgrade pip
	.venv-bench/bin/python -m pip install -q $(TORCH)
	.venv-bench/bin/python -m pip install -q sae-lens==6.54.12 $(TORCH)
	.venv-bench/bin/python -m pip install -q -e . $(TORCH)   # with our runtime dependencies, exact torch pin
	touch .venv-bench/.stamp

bench: .venv-bench/.stamp
	.venv-bench/bin/python benchmarks/bench_training.py
	.venv-bench/bin/python benchmarks/bench_kernels.py

## Re-pin requirements.lock from the current .venv.
lock: $(STAMP)
	{ sed -n 1,2p requirements.lock; $(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(torch|sdl-paper)=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf _build out
