"""What a store gives back is input: a FIFO or a file over 1 MiB under a manifest's name reads as
damaged (never hangs, never read whole), names in manifests are text, not markup, and backups
are ordered by the moment they were made, whatever offset their manifest writes."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from mindscape_ops.backup.model import Verification

from .conftest import run_cli
from .test_backup_faults import NOW, manifest_for, platform, put_backup


@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_a_fifo_or_a_huge_file_under_a_manifest_name_reads_as_damaged_without_hanging(tmp_path, kind):
    directory = platform(tmp_path, "odd")
    space = directory / "backups" / "odd"
    good = put_backup(space, "odd")
    bad = manifest_for("odd", b"data", timedelta(days=1))
    path = space / f"{bad.id}.manifest.json"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes: a plain read would wait for ever
    else:
        fields = json.loads(bad.to_json())
        fields["tables"] = {f"public.t{i}": i for i in range(60_000)}  # valid JSON, over 1 MiB
        path.write_text(json.dumps(fields))
    if kind == "huge":  # a FIFO is no file to list; a huge one is listed as damaged
        result = run_cli("backup", "list", "--json", cwd=directory, timeout=60)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert [b["id"] for b in json.loads(result.stdout)] == [good]
        assert f"backups/odd/{bad.id}.manifest.json is damaged" in result.stderr
    named = run_cli("backup", "verify", bad.id, cwd=directory, timeout=60)  # read by its id
    assert named.returncode != 0 and "Traceback" not in named.stderr, named.stderr
    assert "damaged" in named.stderr, named.stderr


# -- names from a manifest, a store or a database are shown as they are ---------------------


@pytest.mark.parametrize("command", ["verify", "prune"])
def test_a_name_holding_a_markup_tag_is_shown_as_it_is_never_a_traceback(tmp_path, monkeypatch, command):
    """A manifest's table names (anyone with access to the store may write them), a restored
    database's, an S3 object's: a `[/b]` in one is text, not a closing tag that crashes rich."""
    from typer.testing import CliRunner

    from mindscape_ops.backup import actions
    from mindscape_ops.cli import app

    backup_id, odd = "20260102T030000Z-postgres-1a2b", "x[/b]"
    mismatch = f"{odd}: 1 rows in the manifest, 2 restored"
    monkeypatch.setattr(
        actions,
        "verify",
        lambda *a, **k: Verification(backup_id, NOW.isoformat(), False, f"differs ({mismatch})", None, [mismatch]),
    )
    monkeypatch.setattr(
        actions, "prune", lambda *a, **k: actions.Pruned({}, {backup_id: odd}, [f"{backup_id}.{odd}"], [odd], True)
    )
    monkeypatch.chdir(platform(tmp_path, "marks"))
    args = ["backup", "verify", backup_id] if command == "verify" else ["backup", "prune", "--dry-run"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"}, catch_exceptions=False)
    assert result.exit_code == (1 if command == "verify" else 0), result.output
    assert odd in result.output and "Traceback" not in result.output


def test_the_newest_backup_is_the_newest_in_time_whatever_offset_its_manifest_writes():
    """`created_at` is any aware time (validated as such): a manifest written with another UTC
    offset than +00:00 is ordered by its moment, not by its text, so `restore` without an id
    takes the newest backup."""
    import dataclasses
    from datetime import timezone

    from mindscape_ops.backup.catalog import newest_first
    from mindscape_ops.backup.model import Listed

    older = manifest_for("tz", b"data", timedelta(hours=3))
    newer = manifest_for("tz", b"data", timedelta(hours=1))
    east = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    newer = dataclasses.replace(newer, created_at=east.isoformat(timespec="seconds"))
    assert newer.created_at < older.created_at  # as text, the newer sorts first
    ordered = newest_first([Listed(older, None), Listed(newer, None)])
    assert [item.manifest.id for item in ordered] == [newer.id, older.id]
