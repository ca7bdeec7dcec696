"""The rendered CI as a runner would run it, real engine: mindscape's wheel is built from this
checkout and served, with its dependencies, from a package index on 127.0.0.1; in a scratch git
repository the `run:` steps of the rendered ci.yml's generated-files and platform jobs run, their
exact text in `bash -e` with the workflow's, the job's and the step's `env`, in a fresh virtualenv
each (a new runner): install mindscape as rendered (`mindscape==<this version>`), render --check,
up, migrate up, backup create and verify, check, down. What `uses:` does (checkout, setup-python,
upload-artifact) is GitHub's: the checkout is the scratch repository, Python the fresh virtualenv.

The index's files come once per session through pip's normal configuration (`pip wheel`, as the
machine reaches a registry); the rendered steps then see nothing but 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from mindscape_ops import __version__

from .conftest import REPO, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

IMAGES = {"postgres": "mindscape-local/postgres:15", "redis": "mindscape-local/redis:7"}
# What a checkout of this repository must hold to build the wheel (nothing of .venv, .git, tests).
SOURCES = ("mindscape_ops", "templates", "pyproject.toml", "setup.py", "README.md")


class _Index(SimpleHTTPRequestHandler):
    """A PEP 503 simple index from folders: /simple/<normalized name>/ lists that project's files."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("index")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (wheels / f"mindscape-{__version__}-py3-none-any.whl").is_file(), sorted(p.name for p in wheels.iterdir())
    for wheel in wheels.glob("*.whl"):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-", 1)[0]).lower()
        (root / "simple" / project).mkdir(parents=True, exist_ok=True)
        wheel.rename(root / "simple" / project / wheel.name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Index, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def scratch_repository(folder: Path, project: str) -> Path:
    """A new application repository: platform.yaml on this machine's images, one migration,
    rendered by this checkout's mindscape and committed."""
    folder.mkdir()
    services = "".join(f"  {name}: {{image: {image}, port: auto}}\n" for name, image in IMAGES.items())
    (folder / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n{services}"
        "database: {migrations_dir: db/migrations}\nbackups: {local: {dir: var/backups}}\n"
    )
    (folder / "db/migrations").mkdir(parents=True)
    (folder / "db/migrations/0001_orders.sql").write_text(
        "-- migrate:up\nCREATE TABLE orders (id bigserial PRIMARY KEY);\n-- migrate:down\nDROP TABLE orders;\n"
    )
    done = run_cli("render", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    git = ["git", "-C", str(folder), "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the platform"]):
        subprocess.run([*git, *command], check=True, capture_output=True, timeout=60)
    return folder


def runner_env(venv: Path, index: str, temp: Path) -> dict[str, str]:
    """A runner's environment: the fresh virtualenv first on PATH (no other Python's scripts),
    pip reading nothing but the local index."""
    here = str(Path(sys.executable).parent)
    path = [str(venv / "bin"), *(p for p in os.environ["PATH"].split(os.pathsep) if p and p != here)]
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "DOCKER_HOST", "LANG", "TMPDIR")}
    return {
        **keep,
        "PATH": os.pathsep.join(path),
        "CI": "true",
        "RUNNER_TEMP": str(temp),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": index,
    }


def run_job(doc: dict, job: str, repository: Path, index: str, temp: Path) -> list[tuple[str, str]]:
    """Runs the job's `run:` steps as GitHub would (a failed step skips the rest but the ones
    marked always() or failure()); returns (step name, output) of each step run."""
    venv = temp / f"{job}-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    spec = doc["jobs"][job]
    base = {**runner_env(venv, index, temp), **doc.get("env", {}), **spec.get("env", {})}
    ran: list[tuple[str, str]] = []
    failed = None
    for step in spec["steps"]:
        if "run" not in step:
            continue
        condition = step.get("if", "")
        runs = ("always()" in condition or "failure()" in condition) if failed else "failure()" not in condition
        if not runs:
            continue
        env = {**base, **step.get("env", {})}
        # Values reach the scripts through the environment only: no expression inside a script.
        assert "${{" not in step["run"] and not any("${{" in str(v) for v in env.values()), step
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=repository, env=env, capture_output=True, text=True, timeout=900
        )
        ran.append((step.get("name", step["run"]), done.stdout + done.stderr))
        if done.returncode != 0 and failed is None:
            failed = (
                f"{job}: step {step.get('name', step['run'])!r} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
    assert failed is None, failed + "\n" + "\n".join(f"-- {name}\n{out}" for name, out in ran)
    return ran


def test_the_rendered_jobs_install_mindscape_from_an_index_and_run_the_platform(
    tmp_path: Path, index: str, docker_client
) -> None:
    import docker.errors

    for image in IMAGES.values():
        try:
            docker_client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{image} is missing: mindscape -f examples/local/platform.yaml images build postgres redis")
    project = unique_project("ciinst")
    repository = scratch_repository(tmp_path / "app", project)
    doc = yaml.safe_load((repository / ".github/workflows/ci.yml").read_text())
    install = next(s for s in doc["jobs"]["platform"]["steps"] if s.get("name", "").startswith("Install mindscape"))
    assert install["env"] == {"MINDSCAPE_REQUIREMENT": f"mindscape=={__version__}"}
    try:
        generated = dict(run_job(doc, "generated-files", repository, index, tmp_path))
        # pip found mindscape on the local index, as the runner's `mindscape` (the virtualenv's).
        assert f"mindscape-{__version__}" in generated[install["name"]], generated[install["name"]]
        platform = dict(run_job(doc, "platform", repository, index, tmp_path))
    finally:
        remove_project(docker_client, project)
    names = list(platform)
    assert names[0] == install["name"] and names[-1] == "mindscape down", names
    for step in (
        "mindscape up",
        "mindscape migrate up",
        "mindscape backup create, then verify each",
        "mindscape check",
    ):
        assert step in names, names
    assert "0001" in platform["mindscape migrate up"], platform["mindscape migrate up"]
    report = (repository / "reports/mindscape-check.xml").read_text()
    assert "<testcase" in report and "<failure" not in report, report
    # The job's mindscape was the wheel from the index, not this checkout.
    shown = subprocess.run(
        [str(tmp_path / "platform-venv/bin/python"), "-m", "pip", "show", "-f", "mindscape"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Version: {__version__}" in shown and "Editable project location" not in shown, shown
