"""What runs backups.pitr's schedules: the rendered backup workflow takes the physical full and
differential backups on the crons platform.yaml declares (a job of its own, which fired cron
chooses the type), beside the dumps on backups.schedule; the workflow passes actionlint, the
workflow schema and zizmor. And a scheduled run, made without the AWS variables, keeps the
S3 keys archiving uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services import pitr

from .render_support import full_data, platform_from

PITR = {"enabled": True, "full_schedule": "15 1 * * 6", "diff_schedule": "45 4 * * 0-5", "keep_full": 3}


def backup_workflow(tmp_path: Path, **backups) -> dict:
    data = full_data()
    data["backups"].update(backups)
    platform = platform_from(tmp_path, data)
    text = render_platform(platform, tmp_path)[f"{platform.paths.workflows}/backup.yml"]
    return yaml.safe_load(text)


def crons(doc: dict) -> list[str]:
    return [entry["cron"] for entry in doc[True]["schedule"]]  # YAML 1.1 reads `on` as True


def test_the_physical_backups_run_on_the_crons_of_platform_yaml(tmp_path: Path) -> None:
    doc = backup_workflow(tmp_path, pitr=PITR)
    assert crons(doc) == ["30 2 * * 1-5", "15 1 * * 6", "45 4 * * 0-5"]  # dumps, full, diff
    dumps, physical = doc["jobs"]["backup"], doc["jobs"]["physical"]
    assert dumps["if"].startswith("github.event.schedule == '30 2 * * 1-5' ||")
    assert "'15 1 * * 6'" in physical["if"] and "'45 4 * * 0-5'" in physical["if"]
    assert "'30 2 * * 1-5'" not in physical["if"]
    # the type: full when the full cron fired (or was asked for), else diff
    assert physical["env"]["BACKUP_TYPE"] == (
        "${{ (github.event.schedule == '15 1 * * 6' || inputs.kind == 'full') && 'full' || 'diff' }}"
    )
    runs = [step.get("run", "") for step in physical["steps"]]
    assert any('mindscape backup create --physical --type "$BACKUP_TYPE"' in run for run in runs)
    assert any('mindscape backup verify "$id"' in run for run in runs)
    # pgBackRest uses the credentials `up` wrote: no cloud login, no token in this job
    assert physical["permissions"] == {"contents": "read"}
    assert not any("configure-aws-credentials" in step.get("uses", "") for step in physical["steps"])
    assert doc[True]["workflow_dispatch"]["inputs"]["kind"]["options"] == ["dumps", "full", "diff"]


def test_a_cron_shared_with_another_is_listed_once_and_without_pitr_nothing_changes(tmp_path: Path) -> None:
    same = backup_workflow(tmp_path / "same", pitr={"enabled": True, "full_schedule": "30 2 * * 1-5"})
    assert crons(same) == ["30 2 * * 1-5", "0 2 * * 1-6"]  # the full cron is the dumps'; diff is the default
    macro = backup_workflow(
        tmp_path / "macro", pitr={"enabled": True, "full_schedule": "@weekly", "diff_schedule": None}
    )
    assert crons(macro) == ["30 2 * * 1-5", "0 0 * * 0"]  # GitHub's cron has no macros: spelled out
    assert "github.event.schedule == '0 0 * * 0' ||" in macro["jobs"]["physical"]["if"]
    off = backup_workflow(tmp_path / "off")
    assert crons(off) == ["30 2 * * 1-5"] and set(off["jobs"]) == {"backup"}
    assert off[True]["workflow_dispatch"] == {} and "if" not in off["jobs"]["backup"]


@pytest.mark.tools
def test_the_workflow_with_physical_backups_passes_actionlint_the_schema_and_zizmor(tmp_path: Path) -> None:
    from .render_support import run, tool
    from .test_ci_zizmor import failing, zizmor

    project = tmp_path / "project"
    project.mkdir()
    assert run("git", "init", "-q", str(project)).returncode == 0  # actionlint reads .github/actionlint.yaml
    data = full_data()
    data["backups"]["pitr"] = PITR
    platform = platform_from(tmp_path / "p", data)
    shutil.copy(tmp_path / "p" / "platform.yaml", project / "platform.yaml")
    for rel, text in render_platform(platform, project).items():
        if rel.startswith(".github/"):
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_text(text)
    workflow = project / ".github/workflows/backup.yml"
    assert "physical:" in workflow.read_text()
    done = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow))
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(workflow), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    findings, _log = zizmor(project / ".github")
    assert failing(findings) == []


def test_a_run_without_the_aws_variables_keeps_the_s3_keys_archiving_uses() -> None:
    before = pitr.secret_conf_text(None, {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t"})
    kept = pitr.secret_conf_text(b"\x11" * 32, {}, before)  # the scheduled job: no AWS variables
    assert "repo1-s3-key=AKIAEXAMPLE" in kept and "repo1-s3-key-secret=s3cr3t" in kept
    assert "repo1-cipher-pass=" in kept
    fresh = pitr.secret_conf_text(None, {"AWS_ACCESS_KEY_ID": "AKIANEW", "AWS_SECRET_ACCESS_KEY": "n"}, before)
    assert "AKIANEW" in fresh and "AKIAEXAMPLE" not in fresh  # the variables, when set, win
    assert pitr.secret_conf_text(None, {}, "") == "[global]\n"
