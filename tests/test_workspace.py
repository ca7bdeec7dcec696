"""The .mindscape/ workspace: secrets are private and permanent, audit lines are redacted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from mindscape_ops.errors import OperationFailed
from mindscape_ops.workspace.store import Workspace, current_user, dotenv_line, ensure_gitignored, redact


def test_secrets_are_generated_private_and_never_overwritten(tmp_path):
    ws = Workspace(tmp_path)
    first = ws.ensure_secrets(["POSTGRES_PASSWORD", "REDIS_PASSWORD"])
    assert ws.secrets_file.stat().st_mode & 0o777 == 0o600
    assert ws.dir.stat().st_mode & 0o777 == 0o700
    assert len(first["POSTGRES_PASSWORD"]) >= 32 and first["POSTGRES_PASSWORD"] != first["REDIS_PASSWORD"]
    again = ws.ensure_secrets(["POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"])
    assert again["POSTGRES_PASSWORD"] == first["POSTGRES_PASSWORD"]
    assert again["REDIS_PASSWORD"] == first["REDIS_PASSWORD"]
    assert "GRAFANA_ADMIN_PASSWORD" in ws.read_secrets()


def test_hand_set_secret_is_kept(tmp_path):
    ws = Workspace(tmp_path)
    ws.ensure_dir()
    ws.secrets_file.write_text("POSTGRES_PASSWORD=chosen-by-me")
    assert ws.ensure_secrets(["POSTGRES_PASSWORD", "REDIS_PASSWORD"])["POSTGRES_PASSWORD"] == "chosen-by-me"
    assert ws.read_secrets()["POSTGRES_PASSWORD"] == "chosen-by-me"


def test_redact_hides_secrets_by_name_value_and_url():
    secrets = {"s3cr3t-value"}
    out = redact(
        {
            "password": "x",
            "url": "postgresql://app:hunter2@db:5432/app",
            "note": "has s3cr3t-value inside",
            "list": ["s3cr3t-value"],
            "plain": "ok",
        },
        secrets,
    )
    assert out == {
        "password": "***",
        "url": "postgresql://app:***@db:5432/app",
        "note": "has *** inside",
        "list": ["***"],
        "plain": "ok",
    }


def test_audit_line_has_the_contract_fields_and_no_secret(tmp_path):
    ws = Workspace(tmp_path)
    secret = ws.ensure_secrets(["POSTGRES_PASSWORD"])["POSTGRES_PASSWORD"]
    ws.audit("render", {"into": f"postgresql://u:{secret}@h/d", "force": True}, "ok", started=0.0)
    line = ws.audit_file.read_text().splitlines()[-1]
    entry = json.loads(line)
    assert set(entry) == {"time", "user", "command", "arguments", "outcome", "duration_s"}
    assert entry["command"] == "render" and entry["outcome"] == "ok" and entry["arguments"]["force"] is True
    assert secret not in line


def test_gitignore_gets_the_workspace_once(tmp_path):
    (tmp_path / ".gitignore").write_text("node_modules/")
    assert ensure_gitignored(tmp_path) is True
    assert ensure_gitignored(tmp_path) is False
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[0] == "node_modules/" and lines.count(".mindscape/") == 1


def test_state_survives_partial_updates(tmp_path):
    ws = Workspace(tmp_path)
    ws.update_state(ports={"redis": 40001})
    ws.update_state(manifest={"a": "b"})
    assert ws.read_state() == {"ports": {"redis": 40001}, "manifest": {"a": "b"}}
    ws.state_file.write_text("{broken")
    assert ws.read_state() == {}


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ({"manifest": []}, {}),
        ({"manifest": {"a.yml": "h", "b.yml": 1}}, {"manifest": {"a.yml": "h"}}),
        ({"ports": [5432]}, {}),
        ({"ports": {"redis": 6379, "postgres": "5432", "x": True, "y": 70000}}, {"ports": {"redis": 6379}}),
        ({"up_cache": ["k"], "other": 1}, {"other": 1}),
        ({"up_cache": {"key": "k"}}, {"up_cache": {"key": "k"}}),
        ({"render_fingerprint": 5}, {}),
        ({"render_fingerprint": None}, {"render_fingerprint": None}),
        ([1, 2], {}),
    ],
)
def test_wrongly_shaped_state_entries_are_dropped(tmp_path, written, read):
    ws = Workspace(tmp_path)
    ws.ensure_dir()
    ws.state_file.write_text(json.dumps(written))
    assert ws.read_state() == read
    ws.update_state(render_fingerprint="f")  # and the next write leaves them out
    assert json.loads(ws.state_file.read_text()) == {**read, "render_fingerprint": "f"}


def test_audit_outcome_is_redacted(tmp_path):
    ws = Workspace(tmp_path)
    secret = ws.ensure_secrets(["POSTGRES_PASSWORD"])["POSTGRES_PASSWORD"]
    ws.audit("migrate", {}, f"failed (exit 1): postgresql://app:hunter2@db/app rejected {secret}", started=0.0)
    line = ws.audit_file.read_text().splitlines()[-1]
    assert secret not in line and "hunter2" not in line
    assert json.loads(line)["outcome"] == "failed (exit 1): postgresql://app:***@db/app rejected ***"


def test_workspace_ignores_itself_for_git(tmp_path):
    """Secrets stay out of git even where no `init` wrote the project's .gitignore line."""
    ws = Workspace(tmp_path)
    ws.ensure_secrets(["POSTGRES_PASSWORD"])
    assert "*" in (ws.dir / ".gitignore").read_text().splitlines()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(ws.secrets_file)], cwd=tmp_path)
    assert ignored.returncode == 0, "git would commit .mindscape/secrets.env"
    untracked = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path, capture_output=True, text=True
    )
    assert ".mindscape" not in untracked.stdout


def test_an_unwritable_workspace_is_an_operation_failure(tmp_path):
    ws = Workspace(tmp_path)
    ws.ensure_dir()
    ws.state_file.mkdir()  # something in the way of state.json
    with pytest.raises(OperationFailed, match=r"cannot (read|write) .*state\.json: Is a directory") as caught:
        ws.update_state(ports={"redis": 40001})
    assert caught.value.hint


def test_current_user_falls_back_to_the_uid_and_migrations_use_it(monkeypatch):
    import getpass

    from mindscape_ops.migrate.actions import applied_by

    def no_name():
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_name)
    assert current_user() == str(os.getuid())
    assert applied_by().startswith(f"{os.getuid()}@")


ODD_VALUES = [
    "with space",
    "hash # not a comment",
    "a=b=c",
    "quote'single",
    'quote"double',
    "back\\slash",
    "$HOME ${X}",
]


def test_secrets_read_with_dotenv_rules_and_odd_values_survive_a_round_trip(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.ensure_dir()
    hand_written = (
        "# kept as the user wrote it\n"
        "export EXPORTED=plain\n"
        "QUOTED='single quoted # stays'\n"
        'ESCAPED="line\\nbreak"\n'
        "COMMENTED=value # a comment\n"
    )
    workspace.secrets_file.write_text(hand_written)
    added = workspace.ensure_secrets(["EXPORTED", "QUOTED", "NEW_ONE"])
    assert workspace.secrets_file.read_text().startswith(hand_written)  # never rewritten, only appended
    secrets = workspace.read_secrets()
    assert secrets["EXPORTED"] == "plain" and secrets["QUOTED"] == "single quoted # stays"
    assert secrets["ESCAPED"] == "line\nbreak" and secrets["COMMENTED"] == "value"
    assert secrets["NEW_ONE"] == added["NEW_ONE"] and len(added["NEW_ONE"]) == 32
    for index, value in enumerate(ODD_VALUES):
        with workspace.secrets_file.open("a") as handle:
            handle.write(dotenv_line(f"ODD_{index}", value))
    assert [workspace.read_secrets()[f"ODD_{i}"] for i in range(len(ODD_VALUES))] == ODD_VALUES
