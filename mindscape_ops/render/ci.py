"""What the workflow templates need beyond platform.yaml: how to install mindscape (a pinned
source, resolved once; by default the released version that rendered the workflows), which
dependency files the project has (setup-python's pip cache needs one), and the versions of the
tools the workflows install."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mindscape_ops import __version__
from mindscape_ops.config.ci import MindscapeSource

# Every tool a workflow installs, pinned. (Actions are pinned by commit in the templates.)
TOOL_VERSIONS = {
    "pip": "25.3",
    "ruff": "0.17.5",
    "pytest": "9.2.0",
    "pytest-cov": "7.1.0",
    "pip-audit": "2.10.1",
    "bandit": "1.9.4",
    "build": "1.6.1",
    "gitleaks": "v8.21.2",  # go install github.com/zricethezav/gitleaks/v8@<this>
    "go": "1.23.4",
}

# The files setup-python's pip cache is keyed on, looked for at the top of the project.
DEPENDENCY_PATTERNS = ("pyproject.toml", "setup.py", "requirements*.txt")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Install:
    """How a workflow installs mindscape: `source` for pip (a git URL at a commit, a wheel URL
    or a version pin), `hashes` when pip must check them."""

    source: str
    hashes: tuple[str, ...] = ()
    origin: str = "platform.yaml"  # where the choice came from, for comments
    version: str | None = None

    @property
    def requirement(self) -> str:
        """One requirements-file line: the source with each `--hash` (pip checks them)."""
        return " ".join([self.source, *(f"--hash={h}" for h in self.hashes)])


@cache
def _installed_from() -> str | None:
    """This mindscape's PEP 610 record (direct_url.json), when pip wrote one."""
    from importlib import metadata

    try:
        return metadata.distribution("mindscape").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None


def source_from_record(text: str | None) -> MindscapeSource | None:
    """A pinned source from a PEP 610 record: a git URL at its commit, or an https archive
    with its sha256. Anything else (a local folder, an editable checkout) pins nothing."""
    if not text:
        return None
    try:
        record = json.loads(text)
        url = record["url"]
        if "vcs_info" in record:
            info = record["vcs_info"]
            if info.get("vcs") != "git":
                return None
            url = url if "://" in url else f"ssh://{url.replace(':', '/', 1)}"
            return MindscapeSource(source=f"git+{url}@{info['commit_id']}")
        if "archive_info" in record:
            digest = record["archive_info"].get("hashes", {}).get("sha256")
            return MindscapeSource(source=url, hashes=[f"sha256:{digest}"]) if digest else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # not a record we can read, or not a source the model accepts (credentials, file://)
    return None


def resolve_install(chosen: MindscapeSource, record: str | None = None, version: str = __version__) -> Install:
    """platform.yaml's source; else the pinned source this mindscape was installed from (a git
    commit, a wheel URL with its hash); else the released version that renders: `mindscape==X.Y.Z`
    (a newer mindscape renders its own version, and `render --check` says the files are stale)."""
    if chosen.source:
        return Install(chosen.source, tuple(chosen.hashes), "platform.yaml", chosen.version)
    found = source_from_record(_installed_from() if record is None else record)
    if found:
        return Install(found.source, tuple(found.hashes), "the source this mindscape was installed from", found.version)
    return Install(f"mindscape=={version}", (), "the version of mindscape that rendered this file", version)


def dependency_files(root: Path | None) -> list[str]:
    """The project's dependency files at its top, by name, sorted; none when rendering
    without a project folder."""
    if root is None:
        return []
    found = {path.name for pattern in DEPENDENCY_PATTERNS for path in root.glob(pattern) if path.is_file()}
    # A name goes into YAML and a glob list as is: only plain ones (no spaces, quotes, `*`).
    return sorted(name for name in found if _PLAIN_NAME.match(name))


def image_folders(platform) -> dict[str, object]:
    """Where the rendered files name the platform's container images, for Dependabot: the compose
    file's folder, and the Kubernetes manifests' folders when they are rendered."""
    deploy = platform.paths.deploy
    kubernetes = [f"/{deploy}/kubernetes/base"] if platform.kubernetes is not None else []
    return {"compose": deploy, "kubernetes": kubernetes}


def runner_labels(platform) -> list[str]:
    """Every label of the self-hosted runners the deploy and backup workflows name, sorted."""
    ci = platform.ci
    labels = (
        {label for name in ci.deploy.environments for label in ci.deploy.runner(name)} if ci.deploy.enabled else set()
    )
    if platform.backups.enabled:
        labels.update(ci.backup_runner())
    return sorted(labels)


def ci_context(platform, root: Path | None) -> dict[str, object]:
    return {
        "runner_labels": runner_labels(platform),
        "install": resolve_install(platform.ci.mindscape),
        "image_folders": image_folders(platform),
        "dependency_files": dependency_files(root),
        "tools": TOOL_VERSIONS,
    }


def ci_warnings(platform) -> list[str]:
    """What the rendered workflows cannot do as configured; nothing failed yet."""
    warnings: list[str] = []
    s3 = platform.backups.enabled and platform.backups.s3 is not None
    aws = platform.ci.aws
    if s3 and not (aws.role_arn or aws.access_keys):
        warnings.append(
            "backups go to S3 but ci.aws.role_arn is not set: backup.yml assumes the role named by the "
            "repository variable AWS_ROLE_ARN (set ci.aws.role_arn, or ci.aws.access_keys: true for stored keys)"
        )
    return warnings
