.PHONY: demo test test-fast lint bench clean

demo:            ## install what is missing, start Beanpole, deploy examples/python, print its URL
	scripts/demo.sh

test:            ## the whole suite (what CI runs), with Docker's engine for the Docker tests
	scripts/bootstrap.sh --docker
	.venv/bin/python -m pytest -q

test-fast:       ## skip the slow end-to-end tests
	scripts/bootstrap.sh
	.venv/bin/python -m pytest -q -m "not slow"

lint:            ## ruff (rules and format), mypy --strict, and the import layers (lint-imports)
	scripts/bootstrap.sh
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:           ## benchmarks; figures printed and written to bench/results/
	scripts/bootstrap.sh
	command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
	.venv/bin/python -m bench.run
