"""`mindscape logs SERVICE` right after `up`: when the log store has no line of a service yet
(the driver posts its batch every few seconds), the engine's own copy is shown, said on stderr
in one line (issue 22)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner


class Engine:
    def logs(self, name, tail="all", since=None):
        return f"{name}: ready to accept connections\n"


@pytest.fixture
def platform(tmp_path, monkeypatch):
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: lf\nservices: {postgres: {}, victorialogs: {}}\n")
    monkeypatch.chdir(tmp_path)
    from mindscape_ops.provision import lifecycle

    monkeypatch.setattr(lifecycle, "logs", lambda project, service: (Engine(), f"lf-{service}"))
    return tmp_path


def run(monkeypatch, rows, *args):
    from mindscape_ops.cli import app
    from mindscape_ops.provision import logstore

    monkeypatch.setattr(logstore, "read_store", lambda *a, **k: rows)
    return CliRunner().invoke(app, ["logs", "postgres", *args], env={"COLUMNS": "200"})


def test_an_empty_store_falls_back_to_the_engines_copy_and_says_so(platform, monkeypatch):
    result = run(monkeypatch, [])
    assert result.exit_code == 0, result.output
    assert result.stdout == "lf-postgres: ready to accept connections\n"
    assert "the log store has no lines of postgres yet: showing the engine's copy" in result.stderr


def test_lines_in_the_store_are_shown_from_it(platform, monkeypatch):
    result = run(monkeypatch, [{"_msg": "from the store", "_time": "2026-12-06T00:00:00Z"}])
    assert result.exit_code == 0, result.output
    assert "from the store" in result.stdout and "engine" not in result.stderr


def test_a_query_that_matches_nothing_is_an_answer_not_a_fallback(platform, monkeypatch):
    result = run(monkeypatch, [], "--query", "error")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "engine" not in result.stderr
