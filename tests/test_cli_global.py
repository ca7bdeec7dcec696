"""The CLI as its peers behave: a global -f, MINDSCAPE_FILE split like COMPOSE_FILE, the file
found by walking up from any command, --json on read commands, -q/-v, exit codes in every
--help, help that names only what exists, a quiet broken pipe. No engine needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from mindscape_ops.cli import app

from .conftest import EXAMPLES, REPO, run_cli

MINIMAL = (EXAMPLES / "minimal" / "platform.yaml").read_text()


def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None):
    """CliRunner in `cwd`, stdout and stderr apart."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        clean = {"MINDSCAPE_FILE": None, "COLUMNS": "200", **(env or {})}
        return CliRunner().invoke(app, list(args), env=clean, catch_exceptions=False)
    finally:
        os.chdir(old)


def commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))


def test_global_file_option_before_the_command(tmp_path):
    (tmp_path / "a b").mkdir()
    platform = tmp_path / "a b" / "p.yaml"
    platform.write_text(MINIMAL)
    result = invoke("-f", str(platform), "validate", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["files"] == [str(platform)]
    # the command's own -f wins over the global one
    other = tmp_path / "other.yaml"
    other.write_text(MINIMAL.replace("project: minimal", "project: other"))
    result = invoke("-f", str(platform), "validate", "--json", "-f", str(other), cwd=tmp_path)
    assert json.loads(result.stdout)["project"] == "other"


def test_mindscape_file_is_split_on_the_path_separator_only(tmp_path):
    folder = tmp_path / "with space"
    folder.mkdir()
    base, overlay = folder / "base file.yaml", folder / "over lay.yaml"
    base.write_text(MINIMAL)
    overlay.write_text("environment: staging\n")
    one = invoke("validate", "--json", cwd=tmp_path, env={"MINDSCAPE_FILE": str(base)})
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["files"] == [str(base)]
    both = invoke("validate", "--json", cwd=tmp_path, env={"MINDSCAPE_FILE": f"{base}{os.pathsep}{overlay}"})
    assert both.exit_code == 0, both.stderr
    assert json.loads(both.stdout)["files"] == [str(base), str(overlay)]


# Every command that reads platform.yaml, with the arguments it needs to get that far.
READERS = {
    ("validate",): [],
    ("render",): ["--check"],
    ("plan",): [],
    ("up",): [],
    ("down",): [],
    ("status",): [],
    ("logs",): ["postgres"],
    ("check",): [],
    ("migrate", "new"): ["add_users"],
    ("migrate", "up"): [],
    ("migrate", "down"): [],
    ("migrate", "status"): [],
    ("migrate", "baseline"): ["20240101000000"],
    ("backup", "create"): [],
    ("backup", "list"): [],
    ("backup", "restore"): ["x", "--yes"],
    ("backup", "verify"): ["x"],
    ("backup", "prune"): [],
    ("images", "build"): [],  # without SERVICE: the local images the platform uses
    ("auth", "create-user"): ["ada@example.com", "--password-file", "/dev/null"],
    ("auth", "list"): [],
    ("auth", "disable"): ["ada@example.com"],
    ("auth", "reset-mfa"): ["ada@example.com"],
    ("auth", "rotate-key"): [],
    ("auth", "set-roles"): ["ada@example.com", "user"],
}
NO_PLATFORM_FILE = {("init",), ("schema",), ("migrate",), ("backup",), ("images",), ("images", "list"), ("auth",)}


def test_every_command_reading_platform_yaml_is_listed_here():
    found = {path for path, _ in commands()}
    assert found - NO_PLATFORM_FILE <= set(READERS), "a new command: add it to READERS"


@pytest.mark.parametrize("command", sorted(READERS), ids=" ".join)
def test_every_command_finds_platform_yaml_in_a_parent_folder(tmp_path, command):
    """An invalid platform.yaml two folders up: each command must have read *that* file."""
    (tmp_path / "platform.yaml").write_text(MINIMAL + "not_a_key: 1\n")
    deeper = tmp_path / "src" / "app"
    deeper.mkdir(parents=True)
    result = run_cli(*command, *READERS[command], cwd=deeper, timeout=60)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert f"{tmp_path / 'platform.yaml'}:" in result.stdout + result.stderr
    assert "not_a_key" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_validate_json_is_data_on_stdout_and_words_on_stderr(tmp_path):
    (tmp_path / "platform.yaml").write_text(MINIMAL)
    good = invoke("validate", "--json", cwd=tmp_path)
    assert good.exit_code == 0 and json.loads(good.stdout)["valid"] is True
    (tmp_path / "platform.yaml").write_text(MINIMAL + "servces: {}\n")
    bad = run_cli("validate", "--json", cwd=tmp_path)
    assert bad.returncode == 2
    data = json.loads(bad.stdout)  # stdout is the JSON alone
    assert data["valid"] is False
    (problem,) = data["problems"]
    assert problem["path"] == "servces" and problem["line"] == MINIMAL.count("\n") + 1 and problem["column"] == 1
    assert "error:" in bad.stderr and "error:" not in bad.stdout


def test_render_check_json(tmp_path):
    (tmp_path / "platform.yaml").write_text(MINIMAL)
    stale = invoke("render", "--check", "--json", cwd=tmp_path)
    assert stale.exit_code == 1
    data = json.loads(stale.stdout)
    assert data["up_to_date"] is False and {c["status"] for c in data["changes"]} == {"missing"}
    assert invoke("render", cwd=tmp_path).exit_code == 0
    fresh = invoke("render", "--check", "--json", cwd=tmp_path)
    assert fresh.exit_code == 0 and json.loads(fresh.stdout) == {"up_to_date": True, "changes": []}
    assert run_cli("render", "--json", cwd=tmp_path).returncode == 2  # --json only reads


READ_COMMANDS = [("validate",), ("render",), ("status",), ("plan",), ("migrate", "status"), ("backup", "list")]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_offer_json(command):
    group = typer.main.get_command(app)
    for part in command:
        group = group.commands[part]
    assert any("--json" in p.opts for p in group.params)


def test_quiet_keeps_errors_and_data_verbose_says_why(tmp_path):
    (tmp_path / "platform.yaml").write_text(MINIMAL)
    assert invoke("render", cwd=tmp_path).stdout.strip()  # says what it wrote ...
    (tmp_path / "deploy" / "compose.yaml").unlink()
    quiet = invoke("-q", "render", cwd=tmp_path)
    assert quiet.exit_code == 0 and quiet.stdout == ""  # ... not with -q, which keeps warnings alone
    assert all(line.startswith("warning:") for line in quiet.stderr.splitlines()), quiet.stderr
    assert invoke("-q", "validate", cwd=tmp_path).stdout == ""
    assert json.loads(invoke("-q", "validate", "--json", cwd=tmp_path).stdout)["valid"]  # the data asked for
    (tmp_path / "platform.yaml").write_text(MINIMAL + "servces: {}\n")
    assert "servces" in run_cli("-q", "validate", cwd=tmp_path).stderr  # errors always
    (tmp_path / "platform.yaml").write_text(MINIMAL)
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    verbose = run_cli("-v", "validate", cwd=deeper)
    assert f"debug: platform file: {tmp_path / 'platform.yaml'}" in verbose.stderr
    assert "debug:" not in run_cli("validate", cwd=deeper).stderr
    assert run_cli("-q", "-v", "validate", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("command", [(), *(path for path, _ in commands())], ids=lambda c: " ".join(c) or "top")
def test_every_help_lists_the_exit_codes(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    for code in ("0  success", "1  a check", "2  bad usage", "3  environment unusable"):
        assert code in result.stdout, (command, result.stdout)


_MENTION = re.compile(r"`mindscape ([^`]+)`")


def _mentions(text: str) -> list[str]:
    return [" ".join(m.split()) for m in _MENTION.findall(text.replace("\n", " "))]


def _check_mention(mention: str) -> str | None:
    """None when every command and --option of `mindscape <mention>` exists, else what is wrong."""
    group = typer.main.get_command(app)
    options = {o for p in group.params for o in p.opts}
    words = re.split(r"\s[|>&;]", f" {mention}")[0].split()  # up to a shell pipe or redirection
    for i, word in enumerate(words):
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name not in options | {"--help", "-h"}:
                return f"`mindscape {mention}`: no option {name}"
        elif hasattr(group, "commands") and (i == 0 or not words[i - 1].startswith("-")):
            if word in group.commands:
                group = group.commands[word]
                options |= {o for p in group.params for o in p.opts}
            elif word.isupper() or not re.fullmatch(r"[a-z][a-z-]*", word):
                continue  # a placeholder (SERVICE) or a value
            else:
                return f"`mindscape {mention}`: no command {word!r}"
    return None


def test_help_names_only_commands_and_options_that_exist():
    texts = [CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"}).stdout]
    texts += [CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "300"}).stdout for path, _ in commands()]
    mentions = [m for text in texts for m in _mentions(text)]
    assert mentions, "the help mentions commands: the walk must see them"
    assert [problem for m in mentions if (problem := _check_mention(m))] == []


def test_messages_in_the_code_name_only_commands_and_options_that_exist():
    """Hints and errors (`run mindscape up ...`) are help too."""
    mentions = [
        (path.relative_to(REPO), m)
        for path in sorted((REPO / "mindscape_ops").rglob("*.py"))
        for m in _mentions(path.read_text())
    ]
    assert len(mentions) > 20
    wrong = [f"{path}: {problem}" for path, m in mentions if (problem := _check_mention(m))]
    assert wrong == []


def test_the_mention_checker_catches_what_does_not_exist():
    assert _check_mention("render --check --json") is None
    assert _check_mention("backup list --json") is None
    assert _check_mention("logs SERVICE") is None
    assert _check_mention("deploy") == "`mindscape deploy`: no command 'deploy'"
    assert _check_mention("status --watch") == "`mindscape status --watch`: no option --watch"
    assert _check_mention("migrate up --steps 1") == "`mindscape migrate up --steps 1`: no option --steps"


def test_a_broken_pipe_ends_quietly_with_0(tmp_path):
    (tmp_path / "platform.yaml").write_text(MINIMAL)
    assert invoke("render", cwd=tmp_path).exit_code == 0
    for args in (["schema"], ["render", "--check", "--json"], ["validate"]):
        env = {k: v for k, v in os.environ.items() if k != "MINDSCAPE_FILE"}
        child = subprocess.Popen(
            [sys.executable, "-m", "mindscape_ops", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child.stdout.close()  # the reader is gone before the first byte (like `| head -0`)
        stderr = child.stderr.read().decode()
        assert child.wait(timeout=60) == 0, (args, stderr)
        assert stderr == "", (args, stderr)
