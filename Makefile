# The two commands of the README: `make demo` (set up and run the main job), `make test`.
# Python runs from the virtualenv ./.venv (scripts/ensure-venv makes it): its bin/ comes first
# on PATH for every recipe, so `python`, `ruff`, `mindscape` and the bench scripts' `python3`
# are the venv's.
.PHONY: demo test test-fast lint bench images clean-demo venv

export PATH := $(CURDIR)/.venv/bin:$(PATH)
PYTHON := $(CURDIR)/.venv/bin/python

demo:
	scripts/demo

# The virtualenv with mindscape and its test extras; a no-op when up to date.
venv:
	scripts/ensure-venv test

# Installs what the tests need when missing (tools, package, engine, images), then runs them all,
# measuring line and branch coverage of mindscape_ops, the CLI processes the tests start included
# (pytest-cov combines the workers' data); fails under 90% ([tool.coverage] in pyproject.toml).
# TEST_WORKERS pytest-xdist workers (default 2, the CI machine's cores: most engine tests wait on
# containers, not the CPU); TEST_WORKERS=0 runs the suite in this one process. `--dist loadfile`
# hands out whole modules (a module's platform is brought up once, on one worker), except that
# the modules that time things to the second, kill processes or containers at a chosen moment,
# or fill a disk are one unit together (ALONE in tests/conftest.py, whose scheduler says so):
# one worker runs them one after another, so none of them runs beside another of them.
TEST_WORKERS ?= 2
test:
	scripts/setup-test-env
	$(MAKE) lint
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 --cov --cov-report=term-missing:skip-covered; \
		status=$$?; $(PYTHON) scripts/coverage-figures; exit $$status

# Only the tests that need no engine and no external tool.
test-fast: venv
	$(PYTHON) -m pytest -m "not engine and not tools" -q

lint: venv
	ruff check mindscape_ops tests bench/startup bench/up bench/migrate bench/check bench/backup bench/logs bench/auth bench/pitr bench/gateway-upstream
	ruff format --check mindscape_ops tests bench/startup bench/up bench/migrate bench/check bench/backup bench/logs bench/auth bench/pitr bench/gateway-upstream
	lint-imports --no-cache

images:
	scripts/build-local-images

bench: venv
	bench/startup
	bench/up
	bench/migrate
	bench/check
	bench/backup --sizes 256
	bench/logs
	bench/auth
	bench/pitr
	bench/gateway-upstream

# The demo's secrets go with the folder, so its data volumes go too (they would refuse the next
# demo's new passwords).
clean-demo:
	cd demo && mindscape down --volumes --yes || true
	rm -rf demo
