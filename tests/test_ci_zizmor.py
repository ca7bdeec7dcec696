"""zizmor --pedantic, offline, on what a team commits: the workflows and dependabot.yml rendered for
the starter (`mindscape init`) and every example, a variant with the stored-keys fallback, and this
repository's own .github/. No high or medium finding; the low ones zizmor's pedantic persona adds
(a `./` reusable workflow path, a permission without a comment) are shown, not failed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import EXAMPLES, REPO, run_cli
from .render_support import tool

pytestmark = pytest.mark.tools

FAILING = ("Medium", "High")


def zizmor(*inputs: Path) -> tuple[list[dict], str]:
    """The findings (JSON) and zizmor's log of what it audited."""
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--pedantic", "--collect=all", "--format=json", *map(str, inputs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 0: no finding; 10 and up: findings (by their highest severity); anything else: zizmor failed.
    assert done.returncode == 0 or done.returncode >= 10, done.stderr
    return json.loads(done.stdout or "[]"), done.stderr


def failing(findings: list[dict]) -> list[str]:
    return [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']} at "
        + ", ".join(str(loc["symbolic"]["key"].get("Local", loc["symbolic"]["key"])) for loc in f["locations"][:1])
        for f in findings
        if f["determinations"]["severity"] in FAILING and not f.get("ignored")
    ]


def rendered_example(tmp_path: Path, name: str, ci: dict | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder)
    if ci:
        path = folder / "platform.yaml"
        data = yaml.safe_load(path.read_text())
        data.setdefault("ci", {}).update(ci)  # a variant the examples do not render
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_cli("render", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def audited(log: str, folder: Path) -> set[str]:
    """The files under `folder` zizmor says it completed."""
    return {Path(line.split("completed ", 1)[1]).name for line in log.splitlines() if f"completed {folder}" in line}


def test_the_starter_and_every_example_have_no_medium_or_high_finding(tmp_path: Path) -> None:
    starter = tmp_path / "starter"
    done = run_cli("init", str(starter), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    folders = [starter] + [rendered_example(tmp_path, p.name) for p in sorted(EXAMPLES.iterdir()) if p.is_dir()]
    # The stored-keys fallback: AWS keys read as secrets, in the backups environment only.
    folders.append(rendered_example(tmp_path / "keys", "full", ci={"aws": {"access_keys": True}}))
    for folder in folders:
        findings, log = zizmor(folder)
        workflows = {p.name for p in (folder / ".github/workflows").glob("*.yml")}
        assert {"ci.yml", "deploy.yml"} <= workflows, folder
        assert workflows | {"dependabot.yml"} <= audited(log, folder), (folder.name, log)
        assert failing(findings) == [], folder.name


def test_this_repositorys_own_workflows_have_no_medium_or_high_finding() -> None:
    findings, log = zizmor(REPO / ".github")
    assert {"ci.yml", "release.yml"} <= audited(log, REPO / ".github")
    assert failing(findings) == []


def test_the_audit_sees_what_it_must_refuse(tmp_path: Path) -> None:
    """The check is not blind: the former deploy trigger and an OIDC token for every job are found."""
    workflows = tmp_path / "bad" / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "deploy.yml").write_text(
        "name: Deploy\non:\n  workflow_run:\n    workflows: [CI]\n    types: [completed]\n"
        "permissions:\n  contents: read\n  id-token: write\n"
        "jobs:\n  deploy:\n    name: Deploy\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2\n"
        "        with:\n          persist-credentials: false\n"
        "          ref: ${{ github.event.workflow_run.head_sha }}\n"
        '      - run: echo "${{ github.event.workflow_run.head_branch }}"\n'
    )
    findings, _ = zizmor(tmp_path / "bad")
    idents = {f["ident"] for f in findings if f["determinations"]["severity"] in FAILING}
    assert {"dangerous-triggers", "template-injection"} <= idents, failing(findings)


def test_this_repositorys_own_workflows_pass_actionlint_and_the_schema() -> None:
    workflows = sorted(str(p) for p in (REPO / ".github/workflows").glob("*.yml"))
    assert any(p.endswith("release.yml") for p in workflows)
    for command in (
        [tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *workflows],
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
    ):
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
