# The two commands a newcomer needs. Both set everything up first (idempotent).
.PHONY: run test lint bench

ARGS ?=
# Test processes: two fit a 2-core machine (most tests run one torch thread each); the
# browser tests take turns in one of them (tests/conftest.py).
TEST_WORKERS ?= 2

run:
	bash scripts/setup.sh run
	GRADIO_ANALYTICS_ENABLED=False .venv/bin/python app.py $(ARGS)

test:
	bash scripts/setup.sh test
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache
	HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False .venv/bin/python -m pytest \
		-n $(TEST_WORKERS) --dist loadgroup $(ARGS)

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache

bench:
	for script in bench/*.py; do HF_HUB_OFFLINE=1 .venv/bin/python $$script || exit 1; done
