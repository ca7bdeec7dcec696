"""This repository's release workflow (.github/workflows/release.yml), its build job as a runner
runs it: the `run:` steps' exact text, in `bash -e`, with the workflow's, the job's and the
step's `env` (the tag a push of `v<this version>` gives), in a fresh virtualenv first on PATH
(setup-python's Python) and a copy of this checkout (the checkout): build the sdist and the
wheel, `twine check --strict`, the tag names the version the files carry, the built wheel
installed in another fresh virtualenv runs `init` and `render --check`. A tag that names another
version stops the job. The publish job is GitHub's and PyPI's (uses: steps only).

build and twine come through pip's normal configuration, as the machine reaches a registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mindscape_ops import __version__

from .conftest import REPO

pytestmark = pytest.mark.tools

# What the checkout must hold to build (nothing of .venv, .git, tests).
SOURCES = ("mindscape_ops", "templates", "pyproject.toml", "setup.py", "README.md")
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def checkout(folder: Path) -> Path:
    folder.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, folder / name)
    return folder


class Runner:
    """The build job's `run:` steps, runnable one by one in one checkout and one runner."""

    def __init__(self, folder: Path) -> None:
        doc = yaml.safe_load(WORKFLOW.read_text())
        self.steps = [step for step in doc["jobs"]["build"]["steps"] if "run" in step]
        self.repository = checkout(folder / "checkout")
        self.temp = folder / "runner-temp"
        self.temp.mkdir()
        venv = folder / "python"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        here = str(Path(sys.executable).parent)
        path = [str(venv / "bin"), *(p for p in os.environ["PATH"].split(os.pathsep) if p and p != here)]
        keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR") or k.startswith("PIP_")}
        self.env = {**keep, "PATH": os.pathsep.join(path), "CI": "true", "RUNNER_TEMP": str(self.temp)}
        self.env |= {**doc.get("env", {}), **doc["jobs"]["build"].get("env", {})}

    def run(self, step: dict, tag: str) -> subprocess.CompletedProcess[str]:
        env = {k: str(v).replace("${{ github.ref_name }}", tag) for k, v in {**self.env, **step.get("env", {})}.items()}
        # values reach the scripts through the environment only
        assert "${{" not in step["run"] and not any("${{" in v for v in env.values()), step
        return subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=self.repository, env=env, capture_output=True, text=True, timeout=900
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Runner, list[tuple[str, subprocess.CompletedProcess[str]]]]:
    """The whole job, for the tag of this version: each step's name and result, up to the first failure."""
    runner = Runner(tmp_path_factory.mktemp("release"))
    ran = []
    for step in runner.steps:
        done = runner.run(step, f"v{__version__}")
        ran.append((step.get("name", step["run"]), done))
        if done.returncode != 0:
            break
    return runner, ran


def test_the_build_job_builds_checks_installs_and_runs_the_wheel(built) -> None:
    runner, ran = built
    assert all(done.returncode == 0 for _, done in ran), "\n".join(
        f"-- {name}: exit {done.returncode}\n{done.stdout}{done.stderr}" for name, done in ran
    )
    assert len(ran) == 4, [name for name, _ in ran]  # build, twine check, the tag, the installed wheel
    dist = sorted(p.name for p in (runner.repository / "dist").iterdir())
    assert dist == [f"mindscape-{__version__}-py3-none-any.whl", f"mindscape-{__version__}.tar.gz"]
    assert ran[1][1].stdout.count("PASSED") == 2  # twine check --strict, per file
    assert __version__ in ran[3][1].stdout  # `mindscape --version` of the installed wheel
    assert (runner.temp / "first-day" / "platform.yaml").is_file()  # `init` wrote it, `render --check` passed


def test_a_tag_naming_another_version_stops_the_job(built) -> None:
    runner, _ = built
    (step,) = [s for s in runner.steps if s.get("name") == "The tag names the version the package says"]
    assert runner.run(step, f"v{__version__}").returncode == 0
    done = runner.run(step, "v0.0.0")
    assert done.returncode != 0
    assert "does not match the built version" in done.stdout + done.stderr
