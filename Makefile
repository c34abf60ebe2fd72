# rsitr_mm: `make demo` and `make test` work on a fresh clone.
# They create .venv when it is missing and install the pinned stack.
# `make test-latest` runs the same suite in .venv-latest with the newest
# releases that install (requirements-latest.txt) and prints the versions
# it resolved; CI runs both.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rsitr_mm_installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install test demo clean-demo install-latest test-latest

$(STAMP): requirements.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt -e .
	@touch $(STAMP)

install: $(STAMP)

# the versions a run used, for the log
VERSIONS_RE := ^(torch|torchvision|transformers|tokenizers|huggingface.hub|numpy|mmengine|mmcv-lite|mmpretrain|safetensors|open.clip.torch|nltk|setuptools)==
versions = @echo "== $(1) resolved:"; $(1)/bin/python -m pip freeze --all \
	| grep -iE '$(VERSIONS_RE)'

# `make test TESTS=tests/test_utils` runs a part of the suite
TESTS ?= tests

test: $(STAMP)
	$(call versions,$(VENV))
	$(PY) -m pytest $(TESTS)

VENV_LATEST ?= .venv-latest
PY_LATEST := $(VENV_LATEST)/bin/python
STAMP_LATEST := $(VENV_LATEST)/.rsitr_mm_installed

# --upgrade: a reused venv moves to the current releases too
$(STAMP_LATEST): requirements-latest.txt setup.py
	@test -x $(PY_LATEST) || $(PYTHON) -m venv $(VENV_LATEST)
	$(PY_LATEST) -m pip install --upgrade -r requirements-latest.txt -e .
	@touch $(STAMP_LATEST)

install-latest: $(STAMP_LATEST)

test-latest: $(STAMP_LATEST)
	$(call versions,$(VENV_LATEST))
	$(PY_LATEST) -m pytest $(TESTS)

# `make demo EPOCHS=2` for a quick look (the documented numbers use the
# config's 8 epochs).
EPOCHS ?=
demo: $(STAMP)
	$(PY) tools/demo.py $(if $(EPOCHS),--epochs $(EPOCHS))

clean-demo:
	rm -rf work_dirs/demo data/synthetic_demo
