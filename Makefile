# The two commands of the README: `make demo` (set up and run the main job), `make test`.
.PHONY: demo test test-fast lint bench images clean-demo

demo:
	scripts/demo

# Installs what the tests need when missing (tools, package, engine, images), then runs them all.
test:
	scripts/setup-test-env
	$(MAKE) lint
	python -m pytest

# Only the tests that need no engine and no external tool.
test-fast:
	python -m pytest -m "not engine" -q

lint:
	ruff check mindscape_ops tests bench/startup bench/up bench/migrate
	ruff format --check mindscape_ops tests bench/startup bench/up bench/migrate

images:
	scripts/build-local-images

bench:
	bench/startup
	bench/up
	bench/migrate

clean-demo:
	cd demo && mindscape down || true
	rm -rf demo
