"""The workflows against what a real repository and runner do to them: who may trigger a
deployment (a fork's pull request may not), the platform's state surviving the checkout on a
self-hosted runner, the permissions a SARIF upload needs, and settings GitHub or Dependabot
would refuse (a zero or over-long job timeout, an ecosystem twice) refused in platform.yaml."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.errors import ConfigError
from mindscape_ops.render.artifacts import render_platform

from . import render_support
from .conftest import run_cli
from .render_support import full_data, platform_from

this_family_only = render_support.this_family_only


def rendered(tmp_path: Path, **ci) -> tuple[object, dict[str, dict]]:
    data = full_data()
    data["ci"].update(ci)
    platform = platform_from(tmp_path, data)
    files = render_platform(platform)
    docs = {Path(rel).name: yaml.safe_load(text) for rel, text in files.items() if rel.endswith(".yml")}
    return platform, docs


class Context:
    """A GitHub expression context: attribute access down nested dicts, null when missing."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __getattr__(self, name: str) -> object:
        found = self.value.get(name) if isinstance(self.value, dict) else None
        return Context(found) if isinstance(found, dict | None) else found

    def __eq__(self, other: object) -> bool:
        return self.value == other

    def __bool__(self) -> bool:
        return bool(self.value)

    __hash__ = None  # type: ignore[assignment]


def evaluate(condition: str, github: dict, variables: dict | None = None) -> bool:
    """The `${{ }}` of a job's `if:` (only !, ==, !=, &&, ||, parentheses, strings and properties)."""
    expression = re.fullmatch(r"\$\{\{(.*)\}\}", condition.strip(), re.S).group(1)
    assert set(re.findall(r"[!<>]=?|\|\||&&|==", expression)) <= {"!", "==", "!=", "&&", "||"}, expression
    python = expression.replace("!=", " <> ").replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    python = python.replace(" <> ", " != ")
    scope = {"github": Context(github), "vars": Context(variables or {})}
    return bool(eval(python, {"__builtins__": {}}, scope))  # noqa: S307


def trigger(event_name: str, **fields) -> dict:
    return {"event_name": event_name, "repository": "shop/app", "ref": fields.pop("ref", "refs/heads/main"), **fields}


@pytest.mark.parametrize(
    ("github", "deploys"),
    [
        (trigger("push"), True),
        # A fork's pull request from its own `main`: the deploy job does not run for it.
        (trigger("pull_request", ref="refs/pull/7/merge"), False),
        (trigger("pull_request", ref="refs/heads/main"), False),
        (trigger("push", ref="refs/heads/release/2"), False),
        (trigger("workflow_dispatch"), True),
        (trigger("workflow_dispatch", ref="refs/heads/untested-feature"), False),
    ],
)
def test_only_a_push_or_a_dispatch_on_the_deploy_branch_deploys_after_the_gates(
    tmp_path: Path, github: dict, deploys: bool
) -> None:
    platform, docs = rendered(tmp_path)
    jobs = docs["ci.yml"]["jobs"]
    deploy = jobs["deploy"]
    assert deploy["uses"] == "./.github/workflows/deploy.yml"
    assert "secrets" not in deploy and "with" not in deploy  # no repository secret reaches deploy.yml
    # Every gate that always runs is needed (CodeQL's findings do not fail its job; dependency
    # review runs on pull requests only).
    assert set(deploy["needs"]) == set(jobs) - {"deploy", "codeql", "dependency-review"}
    assert evaluate(deploy["if"], github) is deploys
    # In deploy.yml every later environment waits for the one before, so nothing deploys when
    # the first does not.
    environments = list(docs["deploy.yml"]["jobs"].values())
    assert "needs" not in environments[0] and all("needs" in job and "if" not in job for job in environments[1:])


def test_a_dispatch_deploys_only_from_the_configured_branch(tmp_path: Path) -> None:
    platform, docs = rendered(tmp_path, deploy={"branch": "release/2", "environments": ["production"]})
    condition = docs["ci.yml"]["jobs"]["deploy"]["if"]
    assert evaluate(condition, trigger("workflow_dispatch", ref="refs/heads/release/2"))
    assert not evaluate(condition, trigger("workflow_dispatch", ref="refs/heads/main"))


def test_the_self_hosted_checkouts_keep_the_platforms_state(tmp_path: Path) -> None:
    # actions/checkout cleans with `git clean -ffdx` by default, which deletes the git-ignored
    # .mindscape/ (secrets, state) the platform on that machine runs from.
    _, docs = rendered(tmp_path)
    for name in ("deploy.yml", "backup.yml"):
        checkouts = [
            step
            for job in docs[name]["jobs"].values()
            for step in job.get("steps", [])
            if step.get("uses", "").startswith("actions/checkout@")
        ]
        assert checkouts and all(step["with"]["clean"] is False for step in checkouts), name
    for job in docs["ci.yml"]["jobs"].values():  # hosted runners start clean anyway
        assert all("clean" not in step.get("with", {}) for step in job.get("steps", []))


def test_the_sarif_uploads_may_read_their_run_and_every_step_is_named_whole(tmp_path: Path) -> None:
    _, docs = rendered(tmp_path)
    jobs = docs["ci.yml"]["jobs"]
    for job in jobs.values():
        if any("/upload-sarif@" in step.get("uses", "") for step in job.get("steps", [])):
            assert job["permissions"]["actions"] == "read" and job["permissions"]["security-events"] == "write"
        for step in job.get("steps", []):
            assert not step.get("name", "").endswith((" and", " and ")), step["name"]
    assert any(step.get("name") == "Install the project" for step in jobs["e2e"]["steps"])


@pytest.mark.parametrize(
    ("ci", "message"),
    [
        ({"e2e": {"command": "pytest", "timeout": "0s"}}, "ci.e2e.timeout: 0s is not between 1m and 6h"),
        ({"e2e": {"command": "pytest", "timeout": "59s"}}, "is not between 1m and 6h"),
        ({"performance": {"command": "b", "timeout": "7h"}}, "ci.performance.timeout: 7h is not between"),
        ({"dependabot": {"ecosystems": ["pip", "npm", "pip"]}}, "ci.dependabot: ecosystems: each may appear once"),
    ],
)
def test_values_github_would_refuse_are_config_errors(tmp_path: Path, ci: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rendered(tmp_path, **ci)
    assert message in "\n".join(caught.value.problems)


def test_the_limits_themselves_are_accepted(tmp_path: Path) -> None:
    limits = {"e2e": {"command": "pytest", "timeout": "1m"}, "performance": {"command": "b", "timeout": "6h"}}
    _, docs = rendered(tmp_path, **limits)
    assert docs["ci.yml"]["jobs"]["e2e"]["timeout-minutes"] == 1
    assert docs["ci.yml"]["jobs"]["performance"]["timeout-minutes"] == 360


def test_the_cli_refuses_a_zero_timeout_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: timeouts\nservices: {redis: {}}\nci:\n  e2e: {command: pytest, timeout: 0s}\n"
    )
    result = run_cli("render", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "platform.yaml:5:35: ci.e2e.timeout: 0s is not between 1m and 6h" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / ".github").exists()


@pytest.mark.parametrize(
    ("branches", "deploy_branch", "refused"),
    [
        (["main"], "main", False),
        (["release/*"], "release/1.2", False),
        (["release/*"], "release/1/2", True),  # `*` stops at a slash, as in GitHub's filters
        (["release/**"], "release/1/2", False),
        (["develop", "main"], "production", True),
    ],
)
def test_a_deploy_branch_ci_never_runs_on_is_a_config_error(
    tmp_path: Path, branches: list[str], deploy_branch: str, refused: bool
) -> None:
    deploy = {**full_data()["ci"].get("deploy", {}), "branch": deploy_branch}
    if not refused:
        rendered(tmp_path, branches=branches, deploy=deploy)
        return
    with pytest.raises(ConfigError) as caught:
        rendered(tmp_path, branches=branches, deploy=deploy)
    assert f"ci.deploy.branch: {deploy_branch!r} is not among ci.branches" in "\n".join(caught.value.problems)


def test_the_cli_names_the_line_of_a_deploy_branch_ci_never_runs_on(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: branches\nservices: {redis: {}}\nci:\n  branches: [develop]\n"
        "  deploy:\n    branch: trunk\n"
    )
    result = run_cli("render", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "platform.yaml:7:13: ci.deploy.branch: 'trunk' is not among ci.branches ['develop']" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / ".github").exists()
    # A disabled deploy has no branch to reach.
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: branches\nservices: {redis: {}}\nci:\n  branches: [develop]\n"
        "  deploy: {enabled: false, branch: trunk}\n"
    )
    assert run_cli("render", cwd=tmp_path).returncode == 0


# -- a gateway that terminates TLS, brought up on a hosted runner ----------------------------


def terminating(tmp_path: Path) -> str:
    tls = {"mode": "terminate", "certificate": "tls/site.crt", "key": "tls/site.key"}
    data = full_data()
    data["security"]["tls"] = tls
    data["ci"].update(e2e={"command": "pytest tests/e2e"}, performance={"command": "python bench.py"})
    return render_platform(platform_from(tmp_path / "config", data))[".github/workflows/ci.yml"]


def run_step(step: dict, cwd: Path, tmp_path: Path) -> None:
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    (shims / "sudo").write_text('#!/bin/sh\nexec "$@"\n')  # a hosted runner's passwordless sudo
    (shims / "sudo").chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path), **step["env"]}
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def public_key(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_a_runner_gets_a_throwaway_certificate_before_up_and_only_where_none_is(tmp_path: Path) -> None:
    doc = yaml.safe_load(terminating(tmp_path))
    for job in ("platform", "e2e", "performance"):
        names = [step.get("name") for step in doc["jobs"][job]["steps"]]
        assert names.index("A throwaway TLS certificate for the gateway") < names.index("mindscape up"), job
    step = next(s for s in doc["jobs"]["platform"]["steps"] if s.get("name", "").startswith("A throwaway TLS"))
    assert step["env"] == {"TLS_CERTIFICATE": "tls/site.crt", "TLS_KEY": "tls/site.key"}

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    run_step(step, checkout, tmp_path)
    certificate, key = checkout / "tls/site.crt", checkout / "tls/site.key"
    # A matching pair, which nginx's ssl_certificate / ssl_certificate_key accept.
    assert public_key("x509", "-in", str(certificate), "-noout", "-pubkey") == public_key(
        "pkey", "-in", str(key), "-pubout"
    )
    # A pair already there (a self-hosted runner's real one) is left as it is.
    certificate.write_text("the real one\n")
    run_step(step, checkout, tmp_path)
    assert certificate.read_text() == "the real one\n"

    plain = rendered(tmp_path / "plain")[1]["ci.yml"]
    assert not any("throwaway" in str(s.get("name")) for job in plain["jobs"].values() for s in job.get("steps", []))


@pytest.mark.tools
def test_the_terminating_variant_passes_actionlint(tmp_path: Path) -> None:
    from .render_support import run, tool

    path = tmp_path / "ci.yml"
    path.write_text(terminating(tmp_path))
    result = run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# -- code scanning: a private repository without GitHub Code Security has none ---------------


@pytest.mark.parametrize(
    ("private", "variables", "scans"),
    [(False, {}, True), (True, {}, False), (True, {"MINDSCAPE_CODE_SCANNING": "true"}, True)],
)
def test_code_scanning_runs_where_the_repository_has_it(
    tmp_path: Path, private: bool, variables: dict, scans: bool
) -> None:
    jobs = rendered(tmp_path)[1]["ci.yml"]["jobs"]
    pull_request = trigger("pull_request", event={"repository": {"private": private}})
    assert evaluate(jobs["codeql"]["if"], pull_request, variables) is scans
    assert evaluate(jobs["dependency-review"]["if"], pull_request, variables) is scans
    assert not evaluate(jobs["dependency-review"]["if"], {**pull_request, "event_name": "push"}, variables)
    upload = next(s for s in jobs["secrets"]["steps"] if "/upload-sarif@" in s.get("uses", ""))
    # The rest of the upload's condition (!cancelled(), hashFiles) is GitHub's own.
    scope = re.search(r"\(!github\.event\.repository\.private[^)]*\)", upload["if"]).group(0)
    assert evaluate("${{ " + scope + " }}", pull_request, variables) is scans
    # gitleaks itself runs (and fails on a finding) everywhere.
    scripts = "\n".join(step.get("run", "") for step in jobs["secrets"]["steps"])
    assert "if" not in jobs["secrets"] and '/bin/gitleaks" git' in scripts


def test_the_performance_baseline_comes_from_a_push_to_the_default_branch(tmp_path: Path) -> None:
    # `gh run list --branch main` also lists pull requests from a fork's `main`, which keep no baseline.
    jobs = rendered(tmp_path)[1]["ci.yml"]["jobs"]
    lookup = next(s["run"] for s in jobs["performance"]["steps"] if "gh run list" in s.get("run", ""))
    assert re.search(r'--branch "\$BASE_BRANCH" \\\n\s+--event push --status success', lookup), lookup


def test_each_environment_has_its_own_runner_and_secrets_and_only_backups_get_an_oidc_token(tmp_path: Path) -> None:
    platform, docs = rendered(tmp_path, deploy={"runners": {"production": ["self-hosted", "prod-eu"]}})
    jobs = docs["deploy.yml"]["jobs"]
    assert jobs["deploy-staging"]["runs-on"] == ["self-hosted", "staging"]  # the default: one per environment
    assert jobs["deploy-production"]["runs-on"] == ["self-hosted", "prod-eu"]
    url_env = platform.database.url_env
    for name, job in jobs.items():
        # Read in the job that names its environment; ci.yml passes deploy.yml no secret.
        assert job["environment"]["name"] == name.removeprefix("deploy-")
        assert job["env"][url_env] == "${{ secrets." + url_env + " }}"
    assert docs["deploy.yml"][True] == {"workflow_call": {}}  # YAML 1.1 reads `on` as true: no secrets declared
    backup = docs["backup.yml"]["jobs"]["backup"]
    assert backup["runs-on"] == ["self-hosted", "prod-eu"] and backup["environment"] == {"name": "backups"}
    assert docs["backup.yml"]["permissions"] == {"contents": "read"} and backup["permissions"]["id-token"] == "write"
    with pytest.raises(ConfigError) as caught:
        rendered(tmp_path / "bad", deploy={"environments": ["production"], "runners": {"staging": ["x"]}})
    assert "runners: staging is not among environments" in "\n".join(caught.value.problems)
