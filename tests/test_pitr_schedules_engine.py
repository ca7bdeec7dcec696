"""The backup workflow's `physical` job as rendered: its `run:` steps, taken from backup.yml and run
by bash in the project's folder (as the runner does, with RUNNER_TEMP and the BACKUP_TYPE the job
sets), against a real platform with backups.pitr: a full backup, then a differential one, each
verified by the job's own step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


def job_steps(project: Path) -> list[str]:
    doc = yaml.safe_load((project / ".github" / "workflows" / "backup.yml").read_text())
    # the steps after mindscape is installed (this checkout's, here)
    return [step["run"] for step in doc["jobs"]["physical"]["steps"] if step.get("name", "").startswith("mindscape ")]


def test_the_physical_jobs_steps_back_up_and_verify(tmp_path: Path, docker_client, postgres_image) -> None:
    image = postgres_image
    project = unique_project("pitrjob")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {image}, port: auto}}\n"
        "backups:\n  pitr: {enabled: true, archive_timeout: 5s}\n"
    )
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    # `mindscape` and `python` as the job finds them on its PATH (setup-python, the install step)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(runner_temp)}
    try:
        up = run_cli("up", cwd=tmp_path, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        steps = job_steps(tmp_path)
        assert len(steps) == 2
        for kind in ("full", "diff"):
            for script in steps:
                done = subprocess.run(
                    ["bash", "-e", "-c", script],
                    cwd=tmp_path,
                    env={**env, "BACKUP_TYPE": kind},
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert done.returncode == 0, (kind, script, done.stdout, done.stderr)
            made = json.loads((runner_temp / "physical.json").read_text())[0]
            assert made["type"] == kind and made["kind"] == "physical"
            assert "pgbackrest verify passed" in done.stdout + done.stderr
        listed = run_cli("backup", "list", "--json", cwd=tmp_path, timeout=300)
        types = [b["type"] for b in json.loads(listed.stdout) if b.get("kind") == "physical"]
        assert types == ["full", "diff"], listed.stdout
    finally:
        remove_project(docker_client, project)
