"""Where the project's files are read on the web, for absolute `runbook_url`s: a link in Slack,
PagerDuty or an e-mail has to open from anywhere. `monitoring.runbook_base_url` when set, else
the https "blob" URL of the git remote `origin` on its default branch (the folder of
platform.yaml inside the repository included), else nothing (links stay repository paths)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

GIT_TIMEOUT_S = 5
# git@host:org/repo(.git): scp-like ssh, the form GitHub and GitLab offer for cloning
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?!//)(?P<path>[^\s]+)$")


def web_repository(remote: str) -> str | None:
    """Pure: the https address of a repository from its remote URL (https, ssh:// or scp-like
    git@host:path), user and password left out; None for a local path or another scheme."""
    remote = remote.strip()
    parts = urlsplit(remote)
    if "://" not in remote and (found := _SCP.match(remote)):
        host, path = found["host"], "/" + found["path"]
    elif parts.scheme in ("https", "http", "ssh", "git") and parts.hostname:
        host, path = parts.hostname, parts.path
    else:
        return None
    path = path.rstrip("/").removesuffix(".git").strip("/")
    return f"https://{host}/{path}" if path else None


def blob_base(repository: str, branch: str, folder: str = "") -> str:
    """Pure: the URL a file of `folder` (from the repository's top) on `branch` is read at;
    GitLab spells blob `-/blob`."""
    blob = "-/blob" if "gitlab" in urlsplit(repository).hostname.split(".")[0] else "blob"  # type: ignore[union-attr]
    return "/".join(part.strip("/") for part in (repository, blob, branch, folder) if part.strip("/"))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def origin_base(root: Path | None) -> str | None:
    """The web address of the project folder from the git remote `origin`, on the branch its
    HEAD names (`git remote set-head origin --auto` sets it; `main` when it is not known)."""
    if root is None or not (remote := _git(root, "config", "--get", "remote.origin.url")):
        return None
    repository = web_repository(remote)
    if not repository:
        return None
    head = _git(root, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    branch = head.removeprefix("origin/") if head else "main"
    return blob_base(repository, branch, _git(root, "rev-parse", "--show-prefix") or "")


def runbook_base(configured: str | None, root: Path | None) -> str | None:
    """monitoring.runbook_base_url, else the remote's address, else None."""
    return str(configured).rstrip("/") if configured else origin_base(root)
