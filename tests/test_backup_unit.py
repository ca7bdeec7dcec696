"""Fast tests of the backup library's pure parts: ids, checked streams, the local store's
all-or-nothing upload."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

import pytest

from mindscape_ops.adapters.chunks import Reader
from mindscape_ops.backup.model import Manifest, check_id, id_of, new_id
from mindscape_ops.backup.stores import LocalStore
from mindscape_ops.backup.streams import Corrupt, checked, rechunk
from mindscape_ops.errors import UsageError


def test_ids_sort_by_time_name_their_service_and_refuse_paths():
    early = new_id("postgres", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = new_id("redis", datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert early.startswith("20260102T030405Z-postgres-") and early < late
    assert check_id(early) == early and id_of(f"some/prefix/{early}.manifest.json") == early
    for bad in ("../../etc/passwd", "20260102T030405Z-postgres-1a2b/..", ""):
        with pytest.raises(UsageError):
            check_id(bad)
    assert id_of("notes.txt") is None


def test_manifest_round_trips_through_json_and_ignores_unknown_fields():
    m = Manifest(
        "20260102T030405Z-postgres-1a2b", "postgres", "p", "2026-01-02T03:04:05+00:00", 3, "ab" * 32, "f", "15", "x"
    )
    raw = m.to_json().replace(b'"id"', b'"future": 1, "id"')
    assert Manifest.from_json(raw, m.id) == m


def chunks_of(data: bytes, size: int = 7):
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_checked_passes_a_good_stream_whole():
    data = bytes(range(256)) * 10
    out = b"".join(checked(chunks_of(data), len(data), hashlib.sha256(data).hexdigest(), "b"))
    assert out == data


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_checked_never_lets_a_corrupt_stream_end_cleanly(damage):
    data = bytes(range(256)) * 10
    bad = {"flip": data[:100] + b"X" + data[101:], "truncate": data[:-1], "extend": data + b"!"}[damage]
    seen = bytearray()
    with pytest.raises(Corrupt, match="is corrupt"):
        for chunk in checked(chunks_of(bad), len(data), hashlib.sha256(data).hexdigest(), "backup b"):
            seen += chunk
    assert len(seen) < len(bad)  # the last chunk was held back: the consumer saw a truncated stream


def test_rechunk_and_reader():
    assert [len(c) for c in rechunk([b"ab", b"cdefg", b"h"], 3)] == [3, 3, 2]
    reader = Reader([b"hello ", b"", b"world"])
    assert reader.read() == b"hello world"


def test_a_failed_upload_leaves_nothing_behind(tmp_path):
    store = LocalStore(tmp_path / "b", "b/")

    def failing():
        yield b"x" * 1000
        raise RuntimeError("connection cut")

    with pytest.raises(RuntimeError):
        store.upload("one.backup", failing())
    assert store.names() == {}
    store.upload("two.backup", [b"a", b"b"])
    assert set(store.names()) == {"two.backup"} and b"".join(store.read("two.backup")) == b"ab"
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o700


def test_disk_full_is_one_error_with_the_remedy_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from mindscape_ops.errors import OperationFailed

    store = LocalStore(tmp_path / "b", "b/")

    def filling():
        yield b"x" * 100
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OperationFailed) as caught:
        store.upload("full.backup", filling())
    assert "No space left on device" in caught.value.message and "free some disk space" in caught.value.hint
    assert store.names() == {}


def test_bad_ids_damaged_manifests_and_no_backups_are_one_line_errors(tmp_path):
    from .conftest import run_cli

    (tmp_path / "platform.yaml").write_text("version: 1\nproject: bad\nservices: {postgres: {}}\n")
    result = run_cli("backup", "verify", cwd=tmp_path)
    assert result.returncode == 2 and "no backups in backups/" in result.stderr
    folder = tmp_path / "backups" / "bad"  # the project's own space
    folder.mkdir(parents=True)
    damaged = "20260102T030405Z-postgres-1a2b"
    (folder / f"{damaged}.manifest.json").write_text('{"id": 3')
    (folder / f"{damaged}.backup").write_bytes(b"x")
    assert run_cli("backup", "list", "--json", cwd=tmp_path).stdout.strip() == "[]"
    for args, code, text in (
        (["restore", damaged, "--yes"], 1, "is damaged"),
        (["restore", "../../etc/passwd", "--yes"], 2, "is not a backup id"),
        (["restore", "20260102T030405Z-postgres-ffff", "--yes"], 2, "no backup 20260102T030405Z-postgres-ffff"),
        (["create", "--service", "grafana"], 2, "not an enabled service"),
    ):
        result = run_cli("backup", *args, cwd=tmp_path)
        assert result.returncode == code, (args, result.stderr)
        assert text in result.stderr and "Traceback" not in result.stderr and result.stderr.count("error:") == 1


def test_every_service_that_holds_data_has_backup_hooks():
    from mindscape_ops.services.registry import SERVICES

    for service in SERVICES:
        if service.holds_data:
            hooks = service.backup()
            assert all(callable(getattr(hooks, name, None)) for name in ("dump", "restore", "verify")), service.name
            assert isinstance(hooks.FORMAT, str)
        else:
            assert service.backup is None, service.name


def test_row_counts_run_beside_the_dump_and_land_when_it_ends(monkeypatch):
    import threading

    from mindscape_ops.backup.context import Dump
    from mindscape_ops.services import postgres_backup as postgres

    counting = threading.Event()

    def count_rows(rows, parallel=True):
        assert not parallel  # beside the dump, one process counts
        counting.set()
        return {"public.t": 3}

    monkeypatch.setattr(postgres, "count_rows", count_rows)

    def chunks():
        assert counting.wait(5)  # the count runs while the dump streams, not before it
        yield from (b"a", b"b")

    made = Dump(iter(()), "f", "15", "s")
    made.chunks = postgres._counting_meanwhile(chunks(), object(), lambda: None, made)
    assert made.tables is None
    assert b"".join(made.chunks) == b"ab" and made.tables == {"public.t": 3}

    def failing(rows, parallel=True):
        raise RuntimeError("canceling statement due to statement timeout")

    monkeypatch.setattr(postgres, "count_rows", failing)
    made = Dump(iter(()), "f", "15", "s")
    from mindscape_ops.errors import OperationFailed

    with pytest.raises(OperationFailed, match="counting rows for the manifest failed: canceling"):
        b"".join(postgres._counting_meanwhile(iter([b"x"]), object(), lambda: None, made))
    assert made.tables is None


def test_a_dump_stopped_midway_cancels_its_row_count(monkeypatch):
    """A dump not read to its end (the store failed, a Ctrl-C) cancels the count's query rather
    than waiting for it to finish."""
    import threading

    from mindscape_ops.backup.context import Dump
    from mindscape_ops.services import postgres_backup as postgres

    cancelled = threading.Event()
    monkeypatch.setattr(postgres, "count_rows", lambda rows, parallel=True: {} if cancelled.wait(5) else {"x": 1})
    made = Dump(iter(()), "f", "15", "s")
    stream = postgres._counting_meanwhile(iter([b"a", b"b"]), object(), cancelled.set, made)
    assert next(stream) == b"a"
    stream.close()  # returns only once the count has ended: at once, as it was cancelled
    assert cancelled.is_set() and made.tables is None


def test_rows_are_counted_from_text_values_as_from_psycopg_ones():
    """The early start's session answers in text, psycopg in Python values: the same counts."""
    from mindscape_ops.services import postgres_backup as postgres

    asked: list[str] = []

    def rows(query: str) -> list[list]:
        asked.append(query)
        if "pg_class" in query:
            return [["public.a"], ['"odd name".b']]
        return [["12"]] if "public.a" in query else [[3]] if "count" in query else []

    assert postgres.count_rows(rows, parallel=False) == {"public.a": 12, '"odd name".b': 3}
    assert asked[0] == "SET max_parallel_workers_per_gather = 0"


def test_the_local_store_flushes_to_disk_while_it_writes(tmp_path, monkeypatch):
    import os
    import time

    from mindscape_ops.backup import stores

    synced = []
    monkeypatch.setattr(stores, "FLUSH_EVERY", 1000)
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))

    def chunks():
        for index in range(20):
            if index == 10:  # 5000 bytes written: the background flush has had its cue
                deadline = time.monotonic() + 5
                while not synced and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert synced  # before the stream ended: not left to the final fsync
            yield b"x" * 500

    LocalStore(tmp_path / "b", "b/").upload("f.backup", chunks())
    assert (tmp_path / "b" / "f.backup").read_bytes() == b"x" * 10_000


def test_a_refused_connection_keeps_the_reason_on_one_line():
    import socket

    from mindscape_ops.errors import EnvironmentUnusable
    from mindscape_ops.provision.endpoints import DatabaseTarget
    from mindscape_ops.services.postgres_databases import connect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    target = DatabaseTarget(f"postgresql://app:pw-not-shown@127.0.0.1:{port}/app", "postgres at 127.0.0.1", True)
    with pytest.raises(EnvironmentUnusable) as caught:
        connect(target)
    message = str(caught.value)
    assert "Connection refused" in message and "Is the server running" in message
    assert "\n" not in message and "pw-not-shown" not in message


def test_a_damaged_manifest_is_not_listed_but_said_on_stderr(tmp_path):
    from .conftest import run_cli

    (tmp_path / "platform.yaml").write_text("version: 1\nproject: dmg\nservices: {postgres: {}}\n")
    (tmp_path / "backups" / "dmg").mkdir(parents=True)
    (tmp_path / "backups" / "dmg" / "20260102T030000Z-postgres-1a2b.manifest.json").write_text("{damaged")
    result = run_cli("backup", "list", "--json", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    bid = "20260102T030000Z-postgres-1a2b"
    assert f"warning: backup {bid} is not listed: backups/dmg/{bid}.manifest.json is damaged" in result.stderr


def test_which_services_are_backed_up_comes_from_their_hooks(monkeypatch):
    from mindscape_ops.backup import actions
    from mindscape_ops.services import registry

    assert actions.backed_up() == ["postgres", "redis"]
    assert actions.restores_beside("postgres") and not actions.restores_beside("redis")
    with pytest.raises(UsageError) as raised:
        actions.restores_beside("grafana")
    assert raised.value.hint == "back up postgres or redis"
    # a service that brings backup hooks is named too, with nothing else to change
    cache = dataclasses.replace(registry.BY_NAME["redis"], name="cache")
    monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, cache))
    assert actions.backed_up() == ["postgres", "redis", "cache"]


def test_a_stopped_dump_sends_no_more_counts_when_a_cancel_falls_between_two(monkeypatch):
    """Postgres drops a cancel that arrives between two queries: once the dump is stopped, no
    further count is sent, so the stop waits for one query at most, not for every table."""
    import time

    from mindscape_ops.backup.context import Dump
    from mindscape_ops.services import postgres_backup as postgres

    sent: list[str] = []

    def rows(query: str) -> list[list]:  # the server: each query takes 0.2 s, cancels are lost
        sent.append(query)
        time.sleep(0.2)
        return [[f"public.t{i}"] for i in range(50)] if "pg_class" in query else [["1"]]

    made = Dump(iter(()), "f", "15", "s")
    stream = postgres._counting_meanwhile(iter([b"a", b"b"]), rows, lambda: None, made)
    assert next(stream) == b"a"
    time.sleep(0.5)  # counting by now
    began = time.monotonic()
    stream.close()
    assert time.monotonic() - began < 2  # every table: 10 s
    assert len(sent) < 10 and made.tables is None
