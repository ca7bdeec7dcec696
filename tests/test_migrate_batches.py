"""How a run is cut into pipelines, and what a failing query in one tells the user (pure: no
database; mindscape_ops/migrate/pipeline.py and failures.py)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from mindscape_ops.migrate import pipeline
from mindscape_ops.migrate.failures import MigrationFailed, failure_in_pipeline
from mindscape_ops.migrate.files import parse


def migration(version: str, up: str = "CREATE TABLE t (x int);", marker: str = "", down: str = "DROP TABLE t;"):
    text = f"-- migrate:up{marker}\n{up}\n-- migrate:down{marker}\n{down}\n"
    return parse(Path(f"migrations/{version}_m{version}.sql"), text)


def shape(runs) -> list[list[str]]:
    return [[m.version for m in run] for run in runs]


def test_runs_of_pipelined_sections_are_cut_at_the_batch_size_and_keep_their_order(monkeypatch):
    monkeypatch.setattr(pipeline, "PIPELINE_BATCH", 3)
    files = [migration(str(i)) for i in range(1, 8)]
    assert shape(pipeline.batches(files, "up")) == [["1", "2", "3"], ["4", "5", "6"], ["7"]]
    assert shape(pipeline.batches(files[:6], "up")) == [["1", "2", "3"], ["4", "5", "6"]]
    assert shape(pipeline.batches([], "up")) == []


def test_copy_and_transaction_false_sections_run_alone_in_their_place(monkeypatch):
    monkeypatch.setattr(pipeline, "PIPELINE_BATCH", 3)
    files = [
        migration("1"),
        migration("2", "CREATE TABLE c (x int);\ncopy c FROM stdin;"),
        migration("3"),
        migration("4"),
        migration("5", "CREATE INDEX CONCURRENTLY i ON t (x);", marker=" transaction:false"),
        migration("6"),
    ]
    assert shape(pipeline.batches(files, "up")) == [["1"], ["2"], ["3", "4"], ["5"], ["6"]]
    assert shape(pipeline.batches(files, "down")) == [["1", "2", "3"], ["4"], ["5"], ["6"]]


def test_a_failing_statement_is_named_and_the_record_reset_or_commit_is_not_taken_for_one():
    m = migration("7", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);")
    # the queries: BEGIN, the 2 statements, the record, RESET ALL, COMMIT
    statement = failure_in_pipeline(m, m.up, "up", 2, psycopg.Error("boom"))
    assert isinstance(statement, MigrationFailed)
    assert "migrations/7_m7.sql:3: ERROR: boom" in statement.message and "INSERT INTO a" in statement.message
    assert "migrations/7_m7.sql:2:" in failure_in_pipeline(m, m.up, "up", 1, psycopg.Error("x")).message
    for at_commit in (3, 4, 5):
        failure = failure_in_pipeline(m, m.up, "up", at_commit, psycopg.Error("deferred"))
        assert not isinstance(failure, MigrationFailed)
        assert failure.message == "migration 7_m7.sql (up) failed: ERROR: deferred"
        assert "its transaction was rolled back" in failure.hint


@pytest.mark.parametrize("index", [0, 6])
def test_begin_or_past_the_commit_is_no_statement_of_the_file(index):
    m = migration("8", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);")
    assert not isinstance(failure_in_pipeline(m, m.up, "up", index, psycopg.Error("x")), MigrationFailed)
