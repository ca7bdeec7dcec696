"""Every alert's runbook_url opens from Slack, PagerDuty or an e-mail: monitoring.runbook_base_url,
else the https blob URL of the git remote `origin` on its default branch, else (no remote) the
repository path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.web_links import blob_base, origin_base, runbook_base, web_repository

from .monitoring_support import platform_from


@pytest.mark.parametrize(
    ("remote", "web"),
    [
        ("https://github.com/acme/shop.git", "https://github.com/acme/shop"),
        ("https://github.com/acme/shop", "https://github.com/acme/shop"),
        ("https://x-access-token:SECRET@github.com/acme/shop.git/", "https://github.com/acme/shop"),
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop"),
        ("github.com:acme/shop", "https://github.com/acme/shop"),
        ("ssh://git@github.com/acme/shop.git", "https://github.com/acme/shop"),
        ("ssh://git@git.example.com:2222/team/sub/shop.git", "https://git.example.com/team/sub/shop"),
        ("git@gitlab.com:group/sub/shop.git", "https://gitlab.com/group/sub/shop"),
    ],
)
def test_remote_forms_become_https(remote: str, web: str):
    assert web_repository(remote) == web


@pytest.mark.parametrize("remote", ["/srv/git/shop.git", "file:///srv/git/shop.git", "../shop", ""])
def test_local_remotes_have_no_web_address(remote: str):
    assert web_repository(remote) is None


def test_blob_urls():
    assert blob_base("https://github.com/acme/shop", "main") == "https://github.com/acme/shop/blob/main"
    assert blob_base("https://github.com/acme/shop", "trunk", "ops/platform/") == (
        "https://github.com/acme/shop/blob/trunk/ops/platform"
    )
    assert blob_base("https://gitlab.example.com/g/shop", "main") == "https://gitlab.example.com/g/shop/-/blob/main"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q", "-b", "trunk")
    return tmp_path


def test_origin_gives_the_blob_url_of_its_default_branch_and_the_project_folder(repository: Path):
    project = repository / "deploy" / "shop"
    project.mkdir(parents=True)
    assert origin_base(project) is None  # no remote yet
    _git(repository, "remote", "add", "origin", "git@github.com:acme/shop.git")
    # origin/HEAD unknown (nothing fetched): main
    assert origin_base(project) == "https://github.com/acme/shop/blob/main/deploy/shop"
    _git(repository, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    assert origin_base(project) == "https://github.com/acme/shop/blob/trunk/deploy/shop"
    assert origin_base(repository) == "https://github.com/acme/shop/blob/trunk"


def test_the_setting_wins_over_the_remote(repository: Path):
    _git(repository, "remote", "add", "origin", "https://github.com/acme/shop.git")
    assert runbook_base("https://docs.example.com/shop/", repository) == "https://docs.example.com/shop"
    assert runbook_base(None, repository) == "https://github.com/acme/shop/blob/main"
    assert runbook_base(None, None) is None


def test_no_git_no_remote(tmp_path: Path):
    assert origin_base(tmp_path) is None


def _runbook_urls(platform, root: Path | None) -> set[str]:
    text = render_platform(platform, root)[f"{platform.paths.deploy}/prometheus/rules/services.yml"]
    return {r["annotations"]["runbook_url"] for g in yaml.safe_load(text)["groups"] for r in g["rules"]}


def test_rendered_rules_link_absolutely_from_the_remote(repository: Path):
    platform = platform_from(repository, {"version": 1, "project": "shop", "services": {"prometheus": {}}})
    assert all(not url.startswith("https://") for url in _runbook_urls(platform, repository))
    _git(repository, "remote", "add", "origin", "ssh://git@github.com/acme/shop.git")
    urls = _runbook_urls(platform, repository)
    assert urls and all(url.startswith("https://github.com/acme/shop/blob/main/") for url in urls), urls
    assert "https://github.com/acme/shop/blob/main/docs/runbooks/alerts.md#prometheusconfigreloadfailed" in urls
