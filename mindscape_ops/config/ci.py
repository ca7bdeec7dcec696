"""platform.yaml's `ci` section: the GitHub workflows rendered for the project's repository.

Values land in workflow YAML and in shell steps, so each is checked here to hold only what its
place can take. Commands the user writes are their own shell, but never `${{`: GitHub would
expand an expression in it before the shell sees it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from mindscape_ops.settings.base import Strict, check_pattern
from mindscape_ops.settings.types import Duration, RelativePath

# No credentials in a URL (they would land in the workflows): only ssh's `git@` user.
_GIT_RE = re.compile(r"^git\+(https://|ssh://(git@)?)[A-Za-z0-9._~:/%+-]+@(?P<ref>[^@/]+)$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_PIN_RE = re.compile(r"^mindscape==(?P<version>\d+(\.\d+){0,3}([a-z]+\d+)?(\.post\d+)?(\.dev\d+)?)$")
_WHEEL_RE = re.compile(r"^https://[A-Za-z0-9._~:/%+-]+/mindscape-(?P<version>[0-9][A-Za-z0-9.]*)-[A-Za-z0-9_.-]+\.whl$")
_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")

SOURCE_FORMS = (
    "git+https://HOST/ORG/mindscape@<40-hex commit>, "
    "mindscape==X.Y.Z or https://.../mindscape-X.Y.Z-py3-none-any.whl (both with ci.mindscape.hashes)"
)


def _check_source(value: str) -> str:
    git = _GIT_RE.match(value)
    if git:
        if not _SHA_RE.match(git.group("ref")):
            raise ValueError(
                f"{git.group('ref')!r} is not a full commit: a branch or tag can move; "
                "pin the 40-hex commit (git rev-parse <ref>)"
            )
        return value
    if _PIN_RE.match(value) or _WHEEL_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not a pinned source; use one of: {SOURCE_FORMS}")


def _check_command(value: str) -> str:
    if "${{" in value:
        raise ValueError("must not contain `${{` (GitHub would expand it before the shell runs)")
    if not value.strip() or "\x00" in value:
        raise ValueError("must be a non-empty shell command")
    return value


def _check_job_timeout(value: Duration) -> Duration:
    # The job's timeout-minutes: GitHub refuses 0, and a hosted runner stops any job at 6 hours.
    if not 60 <= value.seconds <= 6 * 3600:
        raise ValueError(f"{value} is not between 1m and 6h (a GitHub-hosted job's time limit, in whole minutes)")
    return value


Command = Annotated[str, Field(max_length=2000), AfterValidator(_check_command)]
JobTimeout = Annotated[Duration, AfterValidator(_check_job_timeout)]
RoleArn = Annotated[str, check_pattern(_ROLE_RE, "an IAM role ARN", "arn:aws:iam::123456789012:role/backups")]
Sha256 = Annotated[str, check_pattern(_HASH_RE, "a sha256 hash", "sha256:<64 hex digits>")]


class MindscapeSource(Strict):
    """Where the workflows install mindscape from. Unset: where this mindscape was installed
    from, when that is a pinned source (a git commit, or an archive with its hash)."""

    source: Annotated[str, Field(max_length=500), AfterValidator(_check_source)] | None = None
    hashes: list[Sha256] = []

    @model_validator(mode="after")
    def _hashes_with_pins(self) -> MindscapeSource:
        if self.source is None:
            if self.hashes:
                raise ValueError("hashes go with a version pin or a wheel URL in source")
        elif self.source.startswith("git+"):
            if self.hashes:
                raise ValueError("a git source is pinned by its commit; hashes are for a version pin or a wheel URL")
        elif not self.hashes:
            raise ValueError(
                f"{self.source} without hashes could be replaced on the index: add "
                "hashes: [sha256:...] (pip hash <file>, or the package page)"
            )
        return self

    @property
    def version(self) -> str | None:
        """The version a pin or a wheel URL names (None for a git source or no source)."""
        for pattern in (_PIN_RE, _WHEEL_RE):
            found = pattern.match(self.source or "")
            if found:
                return found.group("version")
        return None


class E2E(Strict):
    """A job that brings the platform up on the runner and runs the project's end-to-end tests."""

    command: Command
    timeout: JobTimeout = Duration("30m")


MetricName = Annotated[
    str, check_pattern(re.compile(r"^[A-Za-z0-9_.:-]{1,100}$"), "a metric name", "requests_per_second")
]


class Performance(Strict):
    """A job that runs the project's benchmark, which writes `results`: a JSON object of
    metric -> number. Lower is better (seconds, milliseconds) except for the metrics named in
    `higher_is_better` (throughput: requests per second). The default branch keeps its results
    as the baseline artifact; every run compares against the newest one."""

    command: Command
    results: RelativePath = "perf-results.json"
    threshold_percent: float = Field(10, gt=0, le=1000)
    higher_is_better: list[MetricName] = []
    timeout: JobTimeout = Duration("30m")


Environment = Literal["development", "staging", "production"]
RunnerLabel = Annotated[
    str, check_pattern(re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"), "a runner label", "self-hosted")
]
RunnerLabels = Annotated[list[RunnerLabel], Field(min_length=1)]


class Deploy(Strict):
    """deploy.yml, called by ci.yml once every CI gate of the same run passed on `branch`: each
    environment in order, each waiting for the one before, each in its GitHub environment
    (its required reviewers apply; its secrets are the only ones its job reads) on a runner
    with its own labels (`runners`; default: self-hosted plus the environment's name)."""

    enabled: bool = True
    environments: list[Environment] = ["development", "staging", "production"]
    # The switch to the new release (the application's own deploy command); mindscape migrates
    # the database before it and runs its checks after it.
    command: Command | None = None
    branch: Annotated[str, check_pattern(re.compile(r"^[A-Za-z0-9._/-]{1,100}$"), "a branch name", "main")] = "main"
    runners: dict[Environment, RunnerLabels] = {}

    @model_validator(mode="after")
    def _distinct(self) -> Deploy:
        if not self.environments:
            raise ValueError("environments: name at least one (development, staging, production)")
        if len(set(self.environments)) != len(self.environments):
            raise ValueError("environments: each may appear once")
        unused = sorted(set(self.runners) - set(self.environments))
        if unused:
            raise ValueError(f"runners: {', '.join(unused)} is not among environments {self.environments}")
        return self

    def runner(self, environment: str) -> list[str]:
        """The labels of the runner that deploys `environment`: one machine (and workspace) per
        environment unless platform.yaml says otherwise."""
        return list(self.runners.get(environment) or ["self-hosted", environment])  # type: ignore[call-overload]


class BackupJob(Strict):
    """backup.yml's job: on the runner of the machine that runs the platform (default: the last
    deploy environment's), in a GitHub environment of its own that holds its secrets and has
    no required reviewers (a scheduled backup would wait for one)."""

    environment: Annotated[
        str, check_pattern(re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$"), "an environment name", "backups")
    ] = "backups"
    runner: RunnerLabels | None = None


class Aws(Strict):
    """How the backup workflow gets AWS credentials for S3: OpenID Connect with a role (no
    stored keys), or, only when chosen, the repository secrets AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY."""

    role_arn: (
        Annotated[str, check_pattern(_ROLE_RE, "an IAM role ARN", "arn:aws:iam::123456789012:role/backups")] | None
    ) = None
    access_keys: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> Aws:
        if self.role_arn and self.access_keys:
            raise ValueError("choose one: role_arn (OIDC) or access_keys: true (the fallback)")
        return self


Ecosystem = Literal["pip", "npm", "docker", "gomod", "bundler", "cargo", "composer", "maven", "gradle", "nuget"]


class Dependabot(Strict):
    """dependabot.yml: the workflows' actions and the platform's container images always, plus
    the application's ecosystems. A new release waits `cooldown_days` before a pull request
    proposes it (a compromised release is usually pulled within days); 0: none."""

    enabled: bool = True
    ecosystems: list[Ecosystem] = ["pip"]
    interval: Literal["daily", "weekly", "monthly"] = "weekly"
    cooldown_days: int = Field(7, ge=0, le=90)

    @model_validator(mode="after")
    def _distinct(self) -> Dependabot:
        # Dependabot refuses two updates for the same ecosystem and directory.
        if len(set(self.ecosystems)) != len(self.ecosystems):
            raise ValueError("ecosystems: each may appear once")
        return self


class Ci(Strict):
    """The GitHub workflows: ci.yml (the gates, then deploy.yml), backup.yml, dependabot.yml."""

    provider: Literal["github"] = "github"
    python_version: Annotated[str, check_pattern(re.compile(r"^3\.\d{1,2}$"), "a Python version", "3.12")] = "3.12"
    branches: list[Annotated[str, check_pattern(re.compile(r"^[A-Za-z0-9._/*-]{1,100}$"), "a branch name", "main")]] = [
        "main"
    ]
    coverage_threshold: int = Field(90, ge=0, le=100)
    source_dir: RelativePath = "src"
    tests_dir: RelativePath = "tests"
    lint: bool = True
    # pip-audit, bandit, CodeQL, gitleaks (SARIF to code scanning) and dependency review.
    security_scan: bool = True
    mindscape: MindscapeSource = MindscapeSource()
    e2e: E2E | None = None
    performance: Performance | None = None
    deploy: Deploy = Deploy()
    backup: BackupJob = BackupJob()
    aws: Aws = Aws()
    dependabot: Dependabot = Dependabot()

    def backup_runner(self) -> list[str]:
        """Where backup.yml runs: platform.yaml's labels, else the last deploy environment's runner."""
        return list(self.backup.runner or self.deploy.runner(self.deploy.environments[-1]))
