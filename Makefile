# imgsweep: `make sweep` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed
FASHION_SOURCE ?= /usr/share/datasets/fashion-mnist
FASHION_PAIR := data/fashion_pair
FASHION10 := data/fashion10
FASHION10_CLASSES := 0:tshirt_top 1:trouser 2:pullover 3:dress 4:coat 5:sandal 6:shirt \
  7:sneaker 8:bag 9:ankle_boot
ARGS ?=
# What the test suite starts for real: PostgreSQL (initdb) and Debian's chromium, which the
# browser tests drive through Playwright (never Playwright's own browser download).
POSTGRES_INITDB ?= /usr/lib/postgresql/*/bin/initdb
CHROMIUM ?= /usr/bin/chromium
USER_ID ?= $(shell id -u)

.DEFAULT_GOAL := help
.PHONY: help install data data-report split sweep worker promote predict serve export ui dashboard \
  tracking-server train \
  test test-fast system-deps lint format bench bench-loader bench-models bench-kerastuner \
  bench-stages bench-search bench-rungs bench-fashion10 bench-repro bench-export bench-faults \
  bench-batch bench-epoch-cost bench-refit bench-refit-average bench-autotune clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED) ## Create .venv from pyproject.toml (again when it changes)

$(BENCH_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $@

$(FASHION_PAIR)/.complete.json: | $(INSTALLED)
	@if [ ! -f $(FASHION_SOURCE)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  { apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq && \
	    apt-get install -y -qq dataset-fashion-mnist; }; } >/dev/null 2>&1 || true; \
	fi
	$(PY) -m pipelines.data.prepare --source $(FASHION_SOURCE) --output $(FASHION_PAIR) \
	  --download-fallback

$(FASHION10)/.complete.json: $(FASHION_PAIR)/.complete.json
	$(PY) -m pipelines.data.prepare --source $(FASHION_SOURCE) --output $(FASHION10) \
	  --download-fallback --classes $(FASHION10_CLASSES)

data: $(FASHION_PAIR)/.complete.json $(FASHION10)/.complete.json ## Write Fashion-MNIST as PNG folders: T-shirt/top vs Shirt (default), and all ten classes (data=fashion10)

split: $(INSTALLED) ## Split one folder of class folders: make split SRC=flowers DST=data/flowers
	$(PY) -m pipelines.data.split $(SRC) $(DST) $(ARGS)

sweep: data ## Run (or resume) the study: make sweep ARGS="search.n_trials=5 ..." [WORKERS=N] [MINUTES=N]
	$(PY) -m sweep $(if $(WORKERS),search.workers=$(WORKERS)) $(if $(MINUTES),search.timeout_minutes=$(MINUTES)) $(ARGS)

worker: data ## Join a running study from any machine: make worker STORAGE=postgresql://... STUDY=...
	$(PY) -m sweep.worker $(if $(STORAGE),search.storage=$(STORAGE)) \
	  $(if $(STUDY),search.study_name=$(STUDY)) $(ARGS)

promote: $(INSTALLED) ## Promote the best trial, its refit, their average and an ensemble as asked (RUN_ID=<trial run>, FORCE=1; ARGS="registry.refit=train_val registry.ensemble=5")
	$(PY) -m sweep.promote $(if $(RUN_ID),registry.run_id=$(RUN_ID)) \
	  $(if $(FORCE),registry.force=true) $(ARGS)

data-report: data ## The data-quality report (duplicates, leakage, label issues) on its own MLflow run: make data-report ARGS="data.root=..."
	$(PY) -m pipelines.quality $(ARGS)

train: data ## Train one config through the three stages, no study: make train ARGS="optimizer=sgd"
	$(PY) -m pipelines.train $(ARGS)

predict: $(INSTALLED) ## Classify images with the champion: make predict IMAGES=path/ [MODEL=name@alias] [OUTPUT=x.csv] [EXPLAIN=1]
	@test -n "$(IMAGES)" || { echo "usage: make predict IMAGES=folder-or-image [MODEL=name@alias|name/version] [OUTPUT=predictions.csv] [EXPLAIN=1]" >&2; exit 2; }
	$(PY) -m champion.predict "$(IMAGES)" $(if $(MODEL),--model "$(MODEL)") \
	  $(if $(OUTPUT),--output "$(OUTPUT)") $(if $(EXPLAIN),--explain) $(ARGS)

serve: $(INSTALLED) ## The champion over HTTP in class names on 127.0.0.1 (PORT=5002, MODEL=name@alias); Ctrl-C stops it
	$(PY) -m servers.scoring --port $(or $(PORT),5002) $(if $(MODEL),--model "$(MODEL)") $(ARGS)

export: $(INSTALLED) ## The champion as SavedModel, ONNX and LiteRT, each checked on the test split: make export [MODEL=name@alias|name/version]
	$(PY) -m champion.export $(if $(MODEL),--model "$(MODEL)") $(ARGS)

ui: $(INSTALLED) ## MLflow UI over mlruns/ on 127.0.0.1 (PORT=5000); Ctrl-C stops it
	$(PY) -m servers.mlflow_ui --port $(or $(PORT),5000) $(ARGS)

dashboard: $(INSTALLED) ## optuna-dashboard over the study storage on 127.0.0.1 (PORT=8080, STORAGE=...); Ctrl-C stops it
	$(PY) -m servers.dashboard --port $(or $(PORT),8080) $(if $(STORAGE),search.storage=$(STORAGE)) \
	  $(ARGS)

tracking-server: $(INSTALLED) ## MLflow server for a team: BACKEND=postgresql://user@host/db PORT=5001
	$(PY) -m servers.mlflow_ui --port $(or $(PORT),5001) \
	  $(if $(BACKEND),--backend-store-uri $(BACKEND))

# As root, apt-get installs what is missing (`apt-get update` only when the install fails);
# otherwise one line names the packages and `make test` fails the tests that need them.
system-deps: ## Install PostgreSQL and chromium for the tests when missing (apt-get, as root)
	@missing="$(if $(wildcard $(POSTGRES_INITDB)),,postgresql)"; \
	missing=$$(echo $$missing $(if $(wildcard $(CHROMIUM)),,chromium)); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$(USER_ID)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $$missing for the test suite (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq $$missing >/dev/null 2>&1 || { apt-get update -qq && \
	    apt-get install -y -qq $$missing >/dev/null; }; \
	else \
	  echo "make test: missing system packages: $$missing; install them (sudo apt-get" \
	    "install $$missing), else the tests that need them fail" >&2; \
	fi

test: $(INSTALLED) system-deps ## The whole test suite (installs PostgreSQL and chromium first)
	IMGSWEEP_WHOLE_SUITE=1 $(PY) -m pytest

test-fast: $(INSTALLED) ## The tests not marked slow
	$(PY) -m pytest -m "not slow"

lint: $(INSTALLED) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED) ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: data ## Full stage vs bare model.fit, and tracking overhead per trial
	$(PY) -m bench.full_stage_overhead

bench-loader: data ## Loader images/s vs ImageDataGenerator and an in-memory feed (QUICK=1: smaller)
	$(PY) -m bench.loader_throughput $(if $(QUICK),--quick)

bench-models: $(INSTALLED) ## Training img/s of each model family (QUICK=1: defaults only; TO_ACCURACY=1: minutes to 0.92 val accuracy on fashion10)
	$(if $(TO_ACCURACY),$(PY) -m bench.time_to_accuracy $(ARGS),$(PY) -m bench.model_throughput $(if $(QUICK),--quick) $(ARGS))

bench-kerastuner: data $(BENCH_INSTALLED) ## imgsweep vs KerasTuner Hyperband, same space and budget (MINUTES=20 each)
	$(PY) -m bench.vs_kerastuner --minutes $(or $(MINUTES),20) $(ARGS)

bench-stages: data ## One study with gates + pruner, pruner only, neither (TRIALS=16 each)
	$(PY) -m bench.stage_value --trials $(or $(TRIALS),16) $(ARGS)

bench-search: data ## Earlier default vs default vs random search, same budget (MINUTES=20 each)
	$(PY) -m bench.search_compare --minutes $(or $(MINUTES),20) $(ARGS)

bench-rungs: data ## Hyperband's rungs at equal training seconds vs equal epochs, same budget (MINUTES=20 each, SEEDS=2, VARIANTS=...)
	$(PY) -m bench.rungs --minutes $(or $(MINUTES),20) --seeds $(or $(SEEDS),2) $(if $(VARIANTS),--variants $(VARIANTS)) $(ARGS)

bench-fashion10: data ## A 30-minute sweep over all ten Fashion-MNIST classes vs the published table
	$(PY) -m bench.fashion10 $(ARGS)

bench-repro: data ## The same study twice with the same seed: same trials, same best (TRIALS=8)
	$(PY) -m bench.reproducibility --trials $(or $(TRIALS),8) $(ARGS)

bench-export: $(INSTALLED) ## Inference latency of Keras, SavedModel, ONNX Runtime and LiteRT: small_cnn, vgg_cnn, their ensemble
	$(PY) -m bench.export_latency $(ARGS)

bench-faults: $(INSTALLED) ## SIGTERM, SIGKILL, PostgreSQL and MLflow-server restarts on a 2-worker study, then counts what was lost (FAULTS=12)
	$(PY) -m bench.faults_mixed --faults $(or $(FAULTS),12) $(ARGS)

bench-batch: data ## Learning-rate rule vs batch size (none/linear/sqrt at 32-256): val AUC and img/s of both queued models
	$(PY) -m bench.batch_scaling $(ARGS)

bench-epoch-cost: data ## The study's epoch-cost measurement vs real full-stage epochs of its queued trials
	$(PY) -m bench.epoch_cost $(ARGS)

bench-refit: data ## registry.refit train_val vs budget: one study's best refitted both ways in the same time, on test (QUICK=1: a first look)
	$(PY) -m bench.refit_compare $(if $(QUICK),--quick) $(ARGS)

bench-refit-average: data ## The best trial, its refit and their average on test, from finished sweeps (STORES="mlruns other/mlruns")
	$(PY) -m bench.refit_average $(or $(STORES),mlruns) $(ARGS)

bench-autotune: data ## Epoch seconds of both queued models with tf.data's autotuner on vs off (imgsweep's CPU setting)
	$(PY) -m bench.input_autotune $(ARGS)

clean: ## Remove run data (mlruns/) and the prepared data (data/); keeps .venv
	rm -rf data mlruns/* 
