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


def github_files(platform, files: dict[str, str]) -> tuple[list[str], str]:
    workflows = [rel for rel in files if rel.startswith(platform.paths.workflows + "/")]
    return workflows, str(Path(platform.paths.workflows).parent / "dependabot.yml")


@pytest.mark.tools
def test_workflows_pass_the_github_schema_and_actionlint(rendered) -> None:
    platform, out, files = rendered
    workflows, dependabot = github_files(platform, files)
    expected = {"ci.yml"} | ({"backup.yml"} if platform.backups.enabled else set())
    expected |= {"deploy.yml"} if platform.ci.deploy.enabled else set()
    assert {Path(rel).name for rel in workflows} == expected
    paths = [str(out / rel) for rel in workflows]
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (dependabot in files) == platform.ci.dependabot.enabled
    if platform.ci.dependabot.enabled:
        result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(out / dependabot))
        assert result.returncode == 0, result.stdout + result.stderr
    # actionlint: expressions, contexts allowed where they are used, the job graph, action inputs,
    # the self-hosted runners' labels (from the rendered .github/actionlint.yaml, read in a git
    # repository), and shellcheck on every `run:` script.
    assert run("git", "init", "-q", str(out)).returncode == 0
    result = run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *paths, cwd=out)
    assert result.returncode == 0, result.stdout + result.stderr


def steps_of(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def assert_pinned(doc: dict) -> None:
    """Every action by full commit; every tool pip or go installs by version."""
    for step in steps_of(doc):
        if "uses" in step:
            assert SHA_PIN.match(step["uses"].replace("/codeql-action/", "/codeql-action-")), step["uses"]
        for line in step.get("run", "").splitlines():
            line = line.strip()
            if line.startswith("python -m pip install") and "-r" not in line.split():
                packages = [w for w in line.split()[4:] if not w.startswith("-")]
                assert packages and all(re.search(r"==[0-9]", w) or w.startswith('"$') for w in packages), line
            if line.startswith("go install"):
                assert re.search(r"@v\d+\.\d+\.\d+$", line), line


def test_ci_workflow_jobs_and_gates(rendered) -> None:
    platform, _, files = rendered
    ci = platform.ci
    doc = yaml.safe_load(files[f"{platform.paths.workflows}/ci.yml"])
    triggers = workflow_triggers(doc)
    assert triggers["push"]["branches"] == ci.branches == triggers["pull_request"]["branches"]
    assert doc["permissions"] == {"contents": "read"}
    # A pull request's newer push cancels its run; a branch's run (a deployment) is never cancelled.
    assert doc["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert doc["env"]["SOURCE_DIR"] == ci.source_dir and doc["env"]["TESTS_DIR"] == ci.tests_dir
    assert doc["env"]["PYTHON_VERSION"] == ci.python_version

    jobs = doc["jobs"]
    expected = {"test", "generated-files", "platform"}  # no build: this project folder has no pyproject.toml
    expected |= {"lint"} if ci.lint else set()
    expected |= {"security", "codeql", "secrets", "dependency-review"} if ci.security_scan else set()
    expected |= {"e2e"} if ci.e2e else set()
    expected |= {"performance"} if ci.performance else set()
    expected |= {"deploy"} if ci.deploy.enabled else set()
    assert set(jobs) == expected

    def commands(job: str) -> str:
        return "\n".join(step.get("run", "") for step in jobs[job]["steps"])

    assert f"--cov-fail-under={ci.coverage_threshold}" in commands("test")
    assert '--cov="$SOURCE_DIR"' in commands("test") and 'pytest "$TESTS_DIR"' in commands("test")
    if ci.lint:
        assert "ruff check" in commands("lint")
    if ci.security_scan:
        assert "pip-audit" in commands("security") and 'bandit -r "$SOURCE_DIR"' in commands("security")
        for job, category in (("codeql", "codeql-python"), ("secrets", "gitleaks")):
            assert jobs[job]["permissions"]["security-events"] == "write"
            steps = jobs[job]["steps"]
            sarif = [s for s in steps if "/codeql-action/" in s.get("uses", "") and "category" in s["with"]]
            assert sarif and sarif[-1]["with"]["category"] == category
        assert "--report-format sarif --report-path gitleaks.sarif" in commands("secrets")
        assert jobs["dependency-review"]["if"].startswith("${{ github.event_name == 'pull_request' && ")
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
    assert ("mindscape migrate up" in commands("platform")) == (
        "postgres" in platform.services.enabled() and not platform.database.migrate_on_up
    )
    if ci.e2e:
        run_order = commands("e2e")
        assert run_order.index("mindscape up") < run_order.index(ci.e2e.command) < run_order.index("mindscape down")
    if ci.performance:
        perf = jobs["performance"]
        assert perf["env"]["THRESHOLD_PERCENT"] == str(ci.performance.threshold_percent)
        assert perf["permissions"] == {"contents": "read", "actions": "read"}
        assert "gh run download" in commands("performance") and "--name perf-baseline" in commands("performance")
        kept = [s for s in perf["steps"] if s.get("with", {}).get("name") == "perf-baseline"]
        assert kept and "github.event.repository.default_branch" in kept[0]["if"]

    assert_pinned(doc)
    for step in steps_of(doc):
        if step.get("uses", "").startswith("actions/setup-python@"):
            assert "cache" not in step["with"]  # rendered without a project folder: no dependency file
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_backup_workflow_schedule_credentials_and_verify(rendered) -> None:
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
    assert runs[-3] == "mindscape backup create" and runs[-1] == "mindscape backup prune"
    assert 'mindscape backup verify "$id"' in runs[-2]  # each backup this run made, read back
    assert_pinned(doc)
    s3_keys = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert not s3_keys & set(job["env"])  # no example chooses the stored-keys fallback
    aws = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert doc["permissions"] == {"contents": "read"}  # the OIDC token, when needed, is the job's alone
    assert job["environment"] == {"name": platform.ci.backup.environment}
    assert job["runs-on"] == platform.ci.backup_runner()
    if platform.backups.s3:
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert len(aws) == 1 and aws[0]["with"]["aws-region"] == platform.backups.s3.region
        role = platform.ci.aws.role_arn or "${{ vars.AWS_ROLE_ARN }}"
        assert aws[0]["with"]["role-to-assume"] == role
        assert job["steps"].index(aws[0]) < [s.get("run") for s in job["steps"]].index("mindscape backup create")
    else:
        assert job["permissions"] == {"contents": "read"} and not aws


def test_deploy_workflow_environments_in_order(rendered) -> None:
    platform, _, files = rendered
    deploy = platform.ci.deploy
    doc = yaml.safe_load(files[f"{platform.paths.workflows}/deploy.yml"])
    triggers = workflow_triggers(doc)
    assert triggers == {"workflow_call": {}}  # only ci.yml calls it, after its gates
    assert doc["permissions"] == {"contents": "read"}
    jobs = doc["jobs"]
    assert list(jobs) == [f"deploy-{name}" for name in deploy.environments]
    previous = None
    for name in deploy.environments:
        job = jobs[f"deploy-{name}"]
        assert job["environment"] == {"name": name}  # the environment's required reviewers apply
        assert job["runs-on"] == deploy.runner(name)
        assert job["concurrency"] == {"group": f"deploy-{name}", "cancel-in-progress": False}
        assert job.get("needs") == (f"deploy-{previous}" if previous else None)
        names = [step.get("name", "") for step in job["steps"]]
        runs = [step.get("run", "") for step in job["steps"]]
        up = runs.index("mindscape up --timeout 300")
        check = next(i for i, r in enumerate(runs) if "mindscape check" in r)
        if "postgres" in platform.services.enabled():
            assert up < runs.index("mindscape migrate up") < check
        if deploy.command:
            switch = names.index("Switch to the new release")
            assert runs.index("mindscape migrate up") < switch < check and runs[switch] == deploy.command
            assert job["steps"][switch]["env"] == {"MINDSCAPE_ENVIRONMENT": name}
        previous = name
    assert_pinned(doc)


def test_dependabot_covers_actions_images_and_the_app_after_a_cooldown(rendered) -> None:
    platform, _, files = rendered
    _, path = github_files(platform, files)
    doc = yaml.safe_load(files[path])
    dependabot = platform.ci.dependabot
    updates = {update["package-ecosystem"]: update for update in doc["updates"]}
    assert len(updates) == len(doc["updates"])  # Dependabot refuses an ecosystem twice for one folder
    others = [e for e in dependabot.ecosystems if e != "docker"]
    kubernetes = [f"/{platform.paths.deploy}/kubernetes/base"] if platform.kubernetes is not None else []
    docker = (["/"] if "docker" in dependabot.ecosystems else []) + kubernetes
    assert list(updates) == ["github-actions", "docker-compose", *(["docker"] if docker else []), *others]
    # The platform's images: the compose file's folder, and the Kubernetes manifests' when rendered.
    assert updates["docker-compose"]["directory"] == f"/{platform.paths.deploy}"
    assert f"{platform.paths.deploy}/compose.yaml" in files
    if docker:
        assert updates["docker"]["directories"] == docker
    for update in doc["updates"]:
        assert update["schedule"]["interval"] == dependabot.interval
        assert update["cooldown"] == {"default-days": dependabot.cooldown_days}
