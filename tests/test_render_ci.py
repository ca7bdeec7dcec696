"""CI workflows rendered from platform.yaml, checked against GitHub's workflow schema and parsed
back to prove that values from platform.yaml arrive intact and in place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mindscape_ops.errors import ConfigError

from . import render_support
from .render_support import HOSTILE_DIR, full_data, literal, platform_from, run, tool

# Fixtures shared with the other render tests; pytest finds fixtures by name in the test module.
rendered = render_support.rendered
this_family_only = render_support.this_family_only

SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def workflow_triggers(doc: dict) -> dict:
    return doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as true


def test_hostile_paths_are_refused_before_any_file_is_written(tmp_path: Path) -> None:
    # Paths reach workflow files and shell steps: the model takes only plain path characters.
    data = full_data()
    data["ci"].update(source_dir=literal(HOSTILE_DIR), tests_dir=literal(HOSTILE_DIR + "/t"))
    data["database"].update(migrations_dir=literal(HOSTILE_DIR + "/m"))
    data["backups"]["local"]["dir"] = literal(HOSTILE_DIR + "/b")
    with pytest.raises(ConfigError) as caught:
        platform_from(tmp_path, data)
    assert len(caught.value.problems) == 4
    assert all("must be a relative path inside the project" in p for p in caught.value.problems)


# -- CI workflows -------------------------------------------------------------------------


@pytest.mark.tools
def test_workflows_pass_the_github_schema(rendered) -> None:
    platform, out, files = rendered
    workflows = [rel for rel in files if rel.startswith(platform.paths.workflows + "/")]
    assert len(workflows) == (2 if platform.backups.enabled else 1)
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *(str(out / rel) for rel in workflows)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_workflow_jobs_and_gates(rendered) -> None:
    platform, _, files = rendered
    ci = platform.ci
    doc = yaml.safe_load(files[f"{platform.paths.workflows}/ci.yml"])
    triggers = workflow_triggers(doc)
    assert triggers["push"]["branches"] == ci.branches == triggers["pull_request"]["branches"]
    assert doc["permissions"] == {"contents": "read"}
    assert doc["concurrency"]["cancel-in-progress"] is True
    assert doc["env"]["SOURCE_DIR"] == ci.source_dir and doc["env"]["TESTS_DIR"] == ci.tests_dir
    assert doc["env"]["PYTHON_VERSION"] == ci.python_version

    jobs = doc["jobs"]
    expected = {"test", "generated-files", "platform", "build"}
    expected |= {"lint"} if ci.lint else set()
    expected |= {"security"} if ci.security_scan else set()
    assert set(jobs) == expected

    def commands(job: str) -> str:
        return "\n".join(step.get("run", "") for step in jobs[job]["steps"])

    assert f"--cov-fail-under={ci.coverage_threshold}" in commands("test")
    assert '--cov="$SOURCE_DIR"' in commands("test") and 'pytest "$TESTS_DIR"' in commands("test")
    if ci.lint:
        assert "ruff check" in commands("lint")
    if ci.security_scan:
        assert "pip-audit" in commands("security") and 'bandit -r "$SOURCE_DIR"' in commands("security")
    assert "mindscape render --check" in commands("generated-files")
    assert "mindscape up" in commands("platform")
    assert "mindscape check --junit reports/mindscape-check.xml" in commands("platform")
    backups = platform.backups
    local_backups = backups.enabled and bool(platform.backup_services) and backups.s3 is None
    assert ("mindscape backup create" in commands("platform")) == local_backups
    assert ("mindscape backup verify" in commands("platform")) == local_backups
    assert ("--skip backups" in commands("platform")) == (backups.enabled and backups.s3 is not None)
    if local_backups:  # the backups gates find a fresh, verified backup of each service
        assert commands("platform").index("mindscape backup create") < commands("platform").index("mindscape check")
    uploads = [
        step for step in jobs["platform"]["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert uploads and uploads[0]["with"]["path"] == "reports/mindscape-check.xml"
    assert "python -m build" in commands("build")
    assert ("mindscape migrate up" in commands("platform")) == (
        "postgres" in platform.services.enabled() and not platform.database.migrate_on_up
    )

    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/setup-python@"):
                assert step["with"]["cache"] == "pip"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_backup_workflow_schedule_and_credentials(rendered) -> None:
    platform, _, files = rendered
    path = f"{platform.paths.workflows}/backup.yml"
    if not platform.backups.enabled:
        assert path not in files
        return
    doc = yaml.safe_load(files[path])
    triggers = workflow_triggers(doc)
    cron = {"@daily": "0 0 * * *"}.get(platform.backups.schedule, platform.backups.schedule)
    assert triggers["schedule"] == [{"cron": cron}] and "workflow_dispatch" in triggers
    job = doc["jobs"]["backup"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-2:] == ["mindscape backup create", "mindscape backup prune"]
    s3_keys = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    if platform.backups.s3:
        for key in s3_keys:
            assert job["env"][key] == f"${{{{ secrets.{key} }}}}"
    else:
        assert not s3_keys & set(job["env"])
