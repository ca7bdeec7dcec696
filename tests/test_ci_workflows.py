"""The workflows as they run: where mindscape is installed from (validated in platform.yaml,
resolved from pip's install record, a hash-checked install really run offline), the pip cache
keyed on the dependency files found when rendering, the performance comparison script run on
real files, and the stored-keys fallback of the backup workflow."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.ci import MindscapeSource
from mindscape_ops.errors import ConfigError
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.ci import _installed_from, ci_warnings, resolve_install, source_from_record

from . import render_support
from .conftest import run_cli
from .render_support import full_data, literal, platform_from

# Render the families of test_render_ci.py alone (a fixture, found by its name here).
this_family_only = render_support.this_family_only

SHA = "0123456789abcdef0123456789abcdef01234567"
HASH = "sha256:" + "ab" * 32


def ci_doc(platform, root: Path | None = None, name: str = "ci.yml") -> dict:
    return yaml.safe_load(render_platform(platform, root)[f"{platform.paths.workflows}/{name}"])


def with_ci(tmp_path: Path, **ci) -> object:
    data = full_data()
    data["ci"].update(ci)
    return platform_from(tmp_path, data)


def install_step(doc: dict) -> dict:
    steps = doc["jobs"]["generated-files"]["steps"]
    return next(step for step in steps if step.get("name", "").startswith("Install mindscape"))


# -- where mindscape comes from -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mindscape", "message"),
    [
        ({"source": "git+https://github.com/o/mindscape@main"}, "'main' is not a full commit"),
        ({"source": "git+https://github.com/o/mindscape@v0.1.0"}, "pin the 40-hex commit"),
        ({"source": "git+https://github.com/o/mindscape"}, "is not a pinned source"),
        ({"source": "mindscape==0.1.0"}, "without hashes could be replaced on the index"),
        ({"source": "mindscape>=0.1"}, "is not a pinned source"),
        ({"source": "mindscape"}, "is not a pinned source"),
        ({"source": "https://example.com/mindscape-0.1.0-py3-none-any.whl"}, "without hashes"),
        ({"source": f"git+https://github.com/o/mindscape@{SHA}", "hashes": [HASH]}, "pinned by its commit"),
        ({"hashes": [HASH]}, "hashes go with a version pin"),
        ({"source": "mindscape==0.1.0", "hashes": ["md5:abc"]}, "is not a sha256 hash"),
        ({"source": 'git+https://x/"; rm -rf /@' + SHA}, "is not a pinned source"),
    ],
)
def test_an_unpinned_source_is_a_config_error_with_its_line(tmp_path: Path, mindscape: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        with_ci(tmp_path, mindscape=mindscape)
    problems = caught.value.problems
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith(f"{tmp_path / 'platform.yaml'}:") and ": ci.mindscape" in problems[0]


def test_the_cli_refuses_an_unpinned_source_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: pinned\nservices: {redis: {}}\n"
        "ci:\n  mindscape:\n    source: git+https://github.com/o/mindscape@main\n"
    )
    for command in (["validate"], ["render"]):
        done = run_cli(*command, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "platform.yaml:6:13: ci.mindscape.source: 'main' is not a full commit" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / ".github").exists()


@pytest.mark.parametrize(
    ("source", "hashes", "step_env"),
    [
        (f"git+https://github.com/o/mindscape@{SHA}", [], "MINDSCAPE_SOURCE"),
        (f"git+ssh://git@github.com/o/mindscape.git@{SHA}", [], "MINDSCAPE_SOURCE"),
        ("mindscape==1.2.3", [HASH], "MINDSCAPE_REQUIREMENT"),
        (
            "https://files.example.com/p/mindscape-1.2.3-py3-none-any.whl",
            [HASH, "sha256:" + "cd" * 32],
            "MINDSCAPE_REQUIREMENT",
        ),
    ],
)
def test_every_workflow_installs_the_chosen_source(tmp_path: Path, source: str, hashes: list, step_env: str) -> None:
    platform = with_ci(tmp_path, mindscape={"source": source, "hashes": hashes})
    expected = " ".join([source, *(f"--hash={h}" for h in hashes)])
    for name in ("ci.yml", "deploy.yml", "backup.yml"):
        doc = ci_doc(platform, name=name)
        steps = [
            s
            for job in doc["jobs"].values()
            for s in job.get("steps", [])
            if s.get("name", "").startswith("Install mindscape")
        ]
        assert steps, name
        for step in steps:
            assert step["env"] == {step_env: expected}
            if hashes:  # pip checks the download, then installs what mindscape needs
                assert "--require-hashes --no-deps" in step["run"] and 'mindscape==1.2.3"' in step["run"]
    assert ci_warnings(platform) == []


def test_the_default_comes_from_pips_install_record() -> None:
    vcs = {"url": "https://github.com/o/mindscape.git", "vcs_info": {"vcs": "git", "commit_id": SHA}}
    found = source_from_record(json.dumps(vcs))
    assert found == MindscapeSource(source=f"git+https://github.com/o/mindscape.git@{SHA}")
    archive = {
        "url": "https://f.example.com/mindscape-2.0.0-py3-none-any.whl",
        "archive_info": {"hashes": {"sha256": "ab" * 32}},
    }
    install = resolve_install(MindscapeSource(), record=json.dumps(archive))
    assert install.source == archive["url"] and install.hashes == (HASH,) and install.version == "2.0.0"
    assert install.origin == "the source this mindscape was installed from"
    for unpinned in (
        {"url": "file:///work/mindscape", "dir_info": {"editable": True}},  # a checkout
        {"url": "https://user:token@github.com/o/mindscape", "vcs_info": {"vcs": "git", "commit_id": SHA}},
        {"url": "https://h/o/mindscape", "vcs_info": {"vcs": "hg", "commit_id": SHA}},
        {"url": "file:///tmp/mindscape-1.0.0-py3-none-any.whl", "archive_info": {"hashes": {"sha256": "ab" * 32}}},
        {"url": "https://h/mindscape-1.0.0-py3-none-any.whl", "archive_info": {}},
    ):
        assert source_from_record(json.dumps(unpinned)) is None, unpinned
    assert source_from_record("not json") is None and source_from_record(None) is None
    chosen = MindscapeSource(source="mindscape==1.0.0", hashes=[HASH])
    assert resolve_install(chosen, record=json.dumps(vcs)).source == "mindscape==1.0.0"  # platform.yaml wins


def test_by_default_the_workflows_install_the_version_that_rendered_them(tmp_path: Path) -> None:
    from mindscape_ops import __version__

    unpinned = source_from_record(_installed_from()) is None  # a checkout (editable install), as here
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: nopin\nservices: {redis: {}}\n")
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ci.mindscape" not in done.stderr  # nothing to warn about: the default installs
    step = install_step(yaml.safe_load((tmp_path / ".github/workflows/ci.yml").read_text()))
    if unpinned:
        assert step["name"] == f"Install mindscape {__version__}"
        assert step["env"] == {"MINDSCAPE_REQUIREMENT": f"mindscape=={__version__}"}
        assert step["run"] == 'python -m pip install --only-binary=mindscape "$MINDSCAPE_REQUIREMENT"'
    editable = json.dumps({"url": "file:///x", "dir_info": {}})
    install = resolve_install(MindscapeSource(), record=editable, version="4.5.6")
    assert (install.source, install.hashes, install.version) == ("mindscape==4.5.6", (), "4.5.6")
    assert install.origin == "the version of mindscape that rendered this file"


def _wheel(folder: Path, version: str) -> Path:
    """A minimal pure-Python wheel named mindscape (no dependencies), as pip would find it."""
    info = f"mindscape-{version}.dist-info"
    files = {
        "mindscape_probe/__init__.py": b"VERSION = 'probe'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: mindscape\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files[f"mindscape-{version}.dist-info/RECORD"] = (
        "\n".join([*record, f"mindscape-{version}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    path = folder / f"mindscape-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


def test_the_hash_checked_install_step_really_installs_and_refuses_a_changed_file(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    digest = "sha256:" + hashlib.sha256(_wheel(wheels, "9.9.9").read_bytes()).hexdigest()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))},
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "PIP_NO_INDEX": "1",  # offline: the wheel is found in the folder, nowhere else
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }

    def run_step(hashes: list[str]) -> subprocess.CompletedProcess:
        platform = with_ci(
            tmp_path / f"p{len(hashes)}{hashes[0][-4:]}", mindscape={"source": "mindscape==9.9.9", "hashes": hashes}
        )
        step = install_step(ci_doc(platform))
        return subprocess.run(
            ["bash", "-e", "-c", step["run"]], env={**env, **step["env"]}, capture_output=True, text=True, timeout=300
        )

    refused = run_step(["sha256:" + "0" * 64])
    assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stderr, refused.stderr
    probe = [str(venv / "bin" / "python"), "-I", "-c", "import importlib.metadata as m; print(m.version('mindscape'))"]
    assert subprocess.run(probe, capture_output=True, text=True).returncode != 0  # nothing was installed
    done = run_step([digest])
    assert done.returncode == 0, done.stdout + done.stderr
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "9.9.9"


# -- the pip cache, keyed on what the project has ------------------------------------------


def setup_pythons(doc: dict) -> list[dict]:
    return [
        s
        for job in doc["jobs"].values()
        for s in job.get("steps", [])
        if s.get("uses", "").startswith("actions/setup-python@")
    ]


def test_pip_cache_only_with_dependency_files_and_render_follows_them(tmp_path: Path) -> None:
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: cache\nservices: {redis: {}}\n")
    assert run_cli("render", cwd=tmp_path).returncode == 0
    workflows = tmp_path / ".github" / "workflows"
    for name in ("ci.yml", "deploy.yml", "backup.yml"):
        doc = yaml.safe_load((workflows / name).read_text())
        assert setup_pythons(doc) and all("cache" not in s["with"] for s in setup_pythons(doc)), name
    assert "build" not in yaml.safe_load((workflows / "ci.yml").read_text())["jobs"]  # nothing to build

    # A dependency file appears: render --check says ci.yml is stale, render keys the cache on it.
    (tmp_path / "requirements-dev.txt").write_text("pytest\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'app'\nversion = '1'\n")
    (tmp_path / "requirements notes.txt").write_text("a name a shell would split: not a key\n")
    stale = run_cli("render", "--check", cwd=tmp_path)
    assert stale.returncode == 1 and "ci.yml" in stale.stdout + stale.stderr
    assert run_cli("render", cwd=tmp_path).returncode == 0
    assert run_cli("render", "--check", cwd=tmp_path).returncode == 0
    doc = yaml.safe_load((workflows / "ci.yml").read_text())
    for step in setup_pythons(doc):
        assert step["with"]["cache"] == "pip"
        assert step["with"]["cache-dependency-path"].split() == ["pyproject.toml", "requirements-dev.txt"]
    assert "python -m build" in doc["jobs"]["build"]["steps"][-2]["run"]


# -- the performance job's comparison, run on real files ----------------------------------


def test_performance_comparison_fails_over_the_threshold(tmp_path: Path) -> None:
    platform = with_ci(
        tmp_path / "p",
        performance={
            "command": "make bench",
            "results": "out/perf.json",
            "threshold_percent": 10,
            "higher_is_better": ["rps", "ops_per_s"],
        },
    )
    job = ci_doc(platform)["jobs"]["performance"]
    compare = next(step["run"] for step in job["steps"] if step.get("name") == "Compare with the baseline")
    assert job["env"]["BASELINE"] == ".mindscape-perf-baseline/perf.json" and job["env"]["RESULTS"] == "out/perf.json"
    assert job["env"]["HIGHER_IS_BETTER"] == "rps ops_per_s"

    def compare_with(current: object, baseline: object | None) -> subprocess.CompletedProcess:
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out/perf.json").write_text(json.dumps(current))
        base = tmp_path / ".mindscape-perf-baseline/perf.json"
        base.parent.mkdir(exist_ok=True)
        base.unlink(missing_ok=True)
        if baseline is not None:
            base.write_text(json.dumps(baseline))
        env = {**os.environ, **job["env"], "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        return subprocess.run(
            ["bash", "-e", "-c", compare], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    first = compare_with({"p95_ms": 120.0}, None)
    assert first.returncode == 0 and "no baseline" in first.stdout
    within = compare_with({"p95_ms": 109.0, "startup_s": 1.5}, {"p95_ms": 100.0, "gone": 3})
    assert within.returncode == 0, within.stdout + within.stderr
    assert "p95_ms: 109.0 against 100.0 (+9.0%, lower is better)" in within.stdout
    assert "startup_s: 1.5 (new, no baseline)" in within.stdout
    slower = compare_with({"p95_ms": 111.0, "rps_cost": 5}, {"p95_ms": 100.0, "rps_cost": 5})
    assert (
        slower.returncode == 1 and "::error::worse than the baseline by more than 10%: p95_ms +11.0%" in slower.stdout
    )
    assert compare_with({"p95_ms": 90}, {"p95_ms": 100}).returncode == 0  # faster is fine
    # Throughput: more is better. Up by half passes; down by 11% fails; a latency up by 11% next
    # to it fails too, each named.
    assert compare_with({"rps": 1500}, {"rps": 1000}).returncode == 0
    fewer = compare_with({"rps": 890, "ops_per_s": 95, "p95_ms": 111}, {"rps": 1000, "ops_per_s": 100, "p95_ms": 100})
    assert fewer.returncode == 1, fewer.stdout
    assert "rps: 890 against 1000 (-11.0%, higher is better)" in fewer.stdout
    assert "::error::worse than the baseline by more than 10%: p95_ms +11.0%, rps -11.0%" in fewer.stdout
    assert compare_with({"rps": 910}, {"rps": 1000}).returncode == 0  # within the threshold
    broken = compare_with({"p95_ms": "fast"}, {"p95_ms": 100})
    assert broken.returncode == 1 and "p95_ms is not a number" in broken.stderr
    assert compare_with([1, 2], {"p95_ms": 100}).returncode == 1


# -- the backup workflow's stored-keys fallback, commands ------------------------------------


def test_stored_aws_keys_only_when_chosen(tmp_path: Path) -> None:
    platform = with_ci(tmp_path / "keys", aws={"access_keys": True})
    doc = ci_doc(platform, name="backup.yml")
    job = doc["jobs"]["backup"]
    assert doc["permissions"] == {"contents": "read"} == job["permissions"]  # no OIDC token
    assert job["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    assert job["environment"] == {"name": "backups"}  # the keys are that environment's secrets
    assert not any("configure-aws-credentials" in step.get("uses", "") for step in job["steps"])

    no_role = with_ci(tmp_path / "none", aws={})
    assert any("ci.aws.role_arn is not set" in w for w in ci_warnings(no_role))
    assert "id-token" in ci_doc(no_role, name="backup.yml")["jobs"]["backup"]["permissions"]

    for aws, message in (
        ({"access_keys": True, "role_arn": "arn:aws:iam::123456789012:role/b"}, "choose one"),
        ({"role_arn": "arn:aws:iam::12345:role/b"}, "is not an IAM role ARN"),
    ):
        with pytest.raises(ConfigError) as caught:
            with_ci(tmp_path / "bad", aws=aws)
        assert message in caught.value.problems[0]


@pytest.mark.parametrize(
    ("ci", "message"),
    [
        ({"deploy": {"command": literal("deploy ${{ secrets.TOKEN }}")}}, "must not contain `${{`"),
        ({"e2e": {"command": "  "}}, "must be a non-empty shell command"),
        ({"deploy": {"environments": ["production", "production"]}}, "each may appear once"),
        ({"deploy": {"environments": []}}, "name at least one"),
        ({"deploy": {"environments": ["qa"]}}, "Input should be"),
        ({"performance": {"command": "b", "threshold_percent": 0}}, "greater than 0"),
        ({"dependabot": {"ecosystems": ["pypi"]}}, "Input should be"),
    ],
)
def test_bad_ci_settings_are_refused(tmp_path: Path, ci: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        with_ci(tmp_path, **ci)
    assert message in "\n".join(caught.value.problems)


@pytest.mark.tools
def test_the_other_variants_pass_the_schemas_and_actionlint(tmp_path: Path) -> None:
    """What the examples do not render: a hash-checked install, stored AWS keys, the role from a
    repository variable, a pip cache, a build job, no deploy command."""
    from .render_support import run, tool

    project = tmp_path / "project"
    project.mkdir()
    assert run("git", "init", "-q", str(project)).returncode == 0  # where actionlint reads .github/actionlint.yaml
    (project / "pyproject.toml").write_text("[project]\nname = 'app'\nversion = '1'\n")
    (project / "requirements.txt").write_text("\n")
    variants = {
        "keys": {"mindscape": {"source": "mindscape==1.2.3", "hashes": [HASH]}, "aws": {"access_keys": True}},
        "role-variable": {"aws": {}, "deploy": {"environments": ["production"]}},
    }
    for name, ci in variants.items():
        platform = with_ci(tmp_path / name, **ci)
        for rel, text in render_platform(platform, project).items():
            if rel.startswith(".github/"):
                (project / rel).parent.mkdir(parents=True, exist_ok=True)
                (project / rel).write_text(text)
        workflows = sorted(str(p) for p in (project / ".github/workflows").glob("*.yml"))
        assert len(workflows) == 3 and setup_pythons(yaml.safe_load(Path(workflows[1]).read_text()))[0]["with"]["cache"]
        for schema, files in (
            ("vendor.github-workflows", workflows),
            ("vendor.dependabot", [str(project / ".github/dependabot.yml")]),
        ):
            result = run(tool("check-jsonschema"), "--builtin-schema", schema, *files)
            assert result.returncode == 0, result.stdout + result.stderr
        result = run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *workflows, cwd=project)
        assert result.returncode == 0, name + result.stdout + result.stderr
