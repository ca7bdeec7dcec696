"""Postgres's pipeline mode for migrations: how a run is cut into batches, the queries of a
batch, and sending them while reading their answers (psycopg's low-level connection; runner.py
reads what the answers mean).

Transactional migrations go to the server pipelined (Postgres's pipeline mode, extended
protocol): `BEGIN`, each statement, the tracking row, `RESET ALL` and `COMMIT`, as separate
queries, for up to PIPELINE_BATCH migrations, then one Sync. The server runs them in order,
each migration committing with its record; at the first error it skips everything up to the
Sync, so the failing migration's transaction is rolled back and none after it runs. Waiting for
each migration's answer made most of a run's time (round trips and this process's work in
turn with the server's: profiled with cProfile); a failing statement is still its own query,
so its error points into it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial

import psycopg
from psycopg import generators, pq
from psycopg.abc import PQGen

from mindscape_ops.migrate.files import MigrationFile, Section

PIPELINE_BATCH = 100  # migrations sent before their answers are read (and echoed)
# COPY to or from the client cannot run in a pipeline: such a section runs statement by statement.
_COPY = re.compile(r"copy\b", re.IGNORECASE)

FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)


def section(migration: MigrationFile, direction: str) -> Section:
    section = migration.up if direction == "up" else migration.down
    assert section is not None  # plan_down refuses a migration without a down section
    return section


def pipelined(section: Section) -> bool:
    return section.transaction and not any(_COPY.match(statement.text) for statement in section.statements)


def batches(migrations: list[MigrationFile], direction: str) -> Iterator[list[MigrationFile]]:
    """`migrations` in order, in runs the pipeline takes (at most PIPELINE_BATCH, whose sections
    are transactional and hold no COPY), the others alone."""
    run: list[MigrationFile] = []
    for migration in migrations:
        if pipelined(section(migration, direction)):
            run.append(migration)
            if len(run) == PIPELINE_BATCH:
                yield run
                run = []
            continue
        if run:
            yield run
            run = []
        yield [migration]
    if run:
        yield run


def queries(
    migrations: list[MigrationFile], direction: str, records: list[str], encoding: str
) -> tuple[list[bytes], list[tuple[MigrationFile, Section, int]]]:
    """The batch's queries, per migration BEGIN, its statements, its record, RESET ALL and
    COMMIT; and where each migration's queries start."""
    sent: list[bytes] = []
    spans: list[tuple[MigrationFile, Section, int]] = []
    for migration, record in zip(migrations, records, strict=True):
        part = section(migration, direction)
        spans.append((migration, part, len(sent)))
        texts = [statement.text for statement in part.statements]
        sent += [text.encode(encoding) for text in ("BEGIN", *texts, record, "RESET ALL", "COMMIT")]
    return sent, spans


def communicate(pgconn: pq.abc.PGconn, queries: list[bytes], received: list[pq.abc.PGresult]) -> PQGen[None]:
    """Send `queries` and a Sync on a connection in pipeline mode, reading answers as they come
    (the server blocks on a full socket otherwise) into `received`, one per query, until the
    Sync's; one wait for the whole pipeline."""
    commands: deque[Callable[[], None]] = deque(partial(pgconn.send_query_params, query, None) for query in queries)
    commands.append(pgconn.pipeline_sync)
    for results in (yield from generators.pipeline_communicate(pgconn, commands)):
        if results[0].status == pq.ExecStatus.PIPELINE_SYNC:
            return
        received += results
    while True:
        results = yield from generators.fetch_many(pgconn)
        if results and results[0].status == pq.ExecStatus.PIPELINE_SYNC:
            return
        if not results and pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the connection was closed")
        received += results


def ok(result: pq.abc.PGresult) -> bool:
    return result.status in _OK


def maybe_merged(error: psycopg.Error) -> bool:
    """The server's "cannot insert multiple commands into a prepared statement": a syntax error
    (42601) with no position, whatever the server's language."""
    return error.sqlstate == "42601" and not error.diag.statement_position


def took(record: pq.abc.PGresult) -> int:
    """The duration the record change returned, in ms."""
    value = record.get_value(0, 0) if record.ntuples else None
    return int(value) if value is not None else 0
