"""The .mindscape/ workspace: secrets are private and permanent, audit lines are redacted."""

from __future__ import annotations

import json

from mindscape_ops.workspace import Workspace, ensure_gitignored, redact


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
