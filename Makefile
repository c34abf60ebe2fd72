# rsitr_mm: `make demo` and `make test` work on a fresh clone.
# They create .venv when it is missing and install the pinned stack.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rsitr_mm_installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install test demo clean-demo

$(STAMP): requirements.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt -e .
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests

# `make demo EPOCHS=2` for a quick look (the documented numbers use the
# config's 8 epochs).
EPOCHS ?=
demo: $(STAMP)
	$(PY) tools/demo.py $(if $(EPOCHS),--epochs $(EPOCHS))

clean-demo:
	rm -rf work_dirs/demo data/synthetic_demo
