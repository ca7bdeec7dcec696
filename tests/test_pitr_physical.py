"""The pure parts of physical backups and point-in-time restores: pgBackRest's info read, the
restorable window, `--to` read, the restore options, the scratch container's binds and server
options. No engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mindscape_ops.backup.physical import Window, parse_info, parse_target, restore_args, window_of
from mindscape_ops.backup.physical_swap import binds_of, server_options
from mindscape_ops.errors import OperationFailed, UsageError

INFO = [
    {
        "name": "shop",
        "cipher": "aes-256-cbc",
        "backup": [
            {
                "label": "20261206-101500F_20261206-110000D",
                "type": "diff",
                "timestamp": {"start": 1796554800, "stop": 1796554810},
                "archive": {"start": "000000010000000000000007", "stop": "000000010000000000000007"},
                "info": {"size": 30000000, "repository": {"delta": 400000, "size": 4000000}},
            },
            {
                "label": "20261206-101500F",
                "type": "full",
                "timestamp": {"start": 1796552100, "stop": 1796552130},
                "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000003"},
                "info": {"size": 29000000, "repository": {"delta": 3900000, "size": 3900000}},
            },
        ],
    }
]


def test_info_is_read_oldest_first():
    found = parse_info(json.dumps(INFO))
    assert [b.label for b in found] == ["20261206-101500F", "20261206-101500F_20261206-110000D"]
    full = found[0]
    assert (full.kind, full.size, full.stored, full.wal_start) == (
        "full",
        29000000,
        3900000,
        "000000010000000000000003",
    )
    assert full.stopped == datetime.fromtimestamp(1796552130, UTC)
    assert full.as_json()["kind"] == "physical" and full.as_json()["type"] == "full"


def test_a_repository_that_cannot_be_used_is_said_and_no_backup_yet_is_not():
    broken = [{"name": "shop", "status": {"code": 1, "message": "missing stanza path"}, "backup": []}]
    with pytest.raises(OperationFailed, match=r"stanza shop cannot be used: missing stanza path \(status 1\)"):
        parse_info(json.dumps(broken))
    assert parse_info(json.dumps([{"name": "shop", "status": {"code": 2, "message": "no valid backups"}}])) == []


def test_info_that_is_not_json_is_said():
    with pytest.raises(OperationFailed, match="did not answer JSON"):
        parse_info("ERROR: [055]: unable to load info file")


def test_window_runs_from_the_oldest_backup_to_the_last_archived_segment():
    found = parse_info(json.dumps(INFO))
    archived = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    window = window_of(found, archived)
    assert window == Window(found[0].stopped, archived)
    assert window.text().startswith("restorable from 2026-12-06 ") and window.text().endswith(
        " to 2026-12-06 12:00:00+00"
    )
    assert window_of(found, None).end == found[-1].stopped  # nothing archived since: the newest backup's end
    assert "take a physical backup" in window_of([], archived).text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06 10:15:00+00", datetime(2026, 12, 6, 10, 15, tzinfo=UTC)),
        ("2026-12-06 11:15:00.250+01:00", datetime(2026, 12, 6, 10, 15, 0, 250000, tzinfo=UTC)),
        ("2026-12-06T10:15:00Z", datetime(2026, 12, 6, 10, 15, tzinfo=UTC)),
        ("latest", None),
        (" LATEST ", None),
    ],
)
def test_to_is_read_as_utc(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(("text", "says"), [("yesterday", "not a time"), ("2026-12-06 10:15:00", "no time zone")])
def test_bad_to_is_refused(text, says):
    with pytest.raises(UsageError, match=says):
        parse_target(text)


def test_restore_options():
    at = datetime(2026, 12, 6, 10, 15, 0, 250000, tzinfo=UTC)
    assert restore_args(at, None) == [
        "--type=time",
        "--target=2026-12-06 10:15:00.250000+00",
        "--target-action=promote",
    ]
    assert restore_args(None, None) == []
    assert restore_args(None, "20261206-101500F") == [
        "--set=20261206-101500F",
        "--type=immediate",
        "--target-action=promote",
    ]


def test_scratch_mounts_what_the_live_container_mounts():
    details = {
        "HostConfig": {
            "Binds": ["shop-postgres-data:/var/lib/postgresql/data:rw", "/p/.mindscape/pgbackrest:/etc/pgbackrest:ro"]
        }
    }
    assert binds_of(details) == {
        "shop-postgres-data": {"bind": "/var/lib/postgresql/data", "mode": "rw"},
        "/p/.mindscape/pgbackrest": {"bind": "/etc/pgbackrest", "mode": "ro"},
    }
    assert binds_of({"HostConfig": {"Binds": None}}) == {}


def test_scratch_server_keeps_archiving_and_listens_on_no_port():
    options = server_options(
        ["postgres", "-c", "archive_mode=on", "-c", "archive_command=pgbackrest --stanza=shop archive-push %p"]
    )
    assert (
        options
        == "-c archive_mode=on -c 'archive_command=pgbackrest --stanza=shop archive-push %p' -c listen_addresses="
    )
    assert server_options([]) == "-c listen_addresses="
