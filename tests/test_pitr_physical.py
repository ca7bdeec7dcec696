"""The pure parts of physical backups and point-in-time restores: pgBackRest's info read, the
restorable window and its verdict against backups.pitr's promise (the WAL segments a restore needs:
tests/test_pitr_timelines.py), `--to` read, the restore options, the scratch container's binds and server options, what
`backup prune` removes, how an interrupted swap is settled. No engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mindscape_ops.backup.physical import is_label, parse_data_dirs, parse_target, restore_args, to_prune
from mindscape_ops.backup.physical_swap import server_options
from mindscape_ops.config.backups import Pitr
from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.services.contract import Failed
from mindscape_ops.services.pitr_info import (
    PhysicalBackup,
    Window,
    in_history,
    parse_history,
    parse_info,
    promised_start,
    verify_damage,
    window_of,
    window_verdict,
)
from mindscape_ops.services.pitr_swap import Settlement, binds_of, decide

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
    assert restore_args(at, None, "20261206-101500F", 3) == [
        "--set=20261206-101500F",
        "--target-timeline=3",
        "--type=time",
        "--target=2026-12-06 10:15:00.250000+00",
        "--target-action=promote",
    ]
    assert restore_args(None, None, "20261206-101500F", 1) == ["--set=20261206-101500F", "--target-timeline=1"]
    assert restore_args(None, "20261206-101500F") == [
        "--set=20261206-101500F",
        "--type=immediate",
        "--target-action=promote",
    ]


def test_a_time_or_latest_starts_from_a_backup_in_the_live_timelines_past():
    def taken(start: str, stop: str) -> PhysicalBackup:
        return PhysicalBackup("L", "full", datetime.now(UTC), datetime.now(UTC), 1, 1, start, stop)

    history = parse_history("1\t0/5000100\tbefore transaction 750\n2\t0/9000000\tno recovery target specified\n")
    assert history == {1: 0x5000100, 2: 0x9000000}
    assert in_history(taken("000000030000000000000009", "00000003000000000000000A"), 3, history)
    assert in_history(taken("000000010000000000000004", "000000010000000000000005"), 3, history)  # ended as 1 was left
    assert not in_history(taken("000000010000000000000007", "000000010000000000000008"), 3, history)  # after
    assert not in_history(taken("000000040000000000000009", "00000004000000000000000A"), 3, history)  # abandoned
    assert in_history(taken("000000010000000000000007", "000000010000000000000008"), 1, {})


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


def test_the_restored_copy_pushes_with_its_own_data_directory_as_pg1_path():
    live = ["postgres", "-c", "archive_mode=on", "-c", "archive_command=pgbackrest --stanza=shop archive-push %p"]
    own = "pgbackrest --stanza=shop --pg1-path=/var/lib/postgresql/data/pgdata.restore-1 archive-push %p"
    assert server_options(live, own) == f"-c archive_mode=on -c 'archive_command={own}' -c listen_addresses="


# -- the window against what backups.pitr promises (backups.restorable_window) --------------------

NOW = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # a Wednesday


def backup(label: str, kind: str, stopped: datetime) -> PhysicalBackup:
    return PhysicalBackup(label, kind, stopped - timedelta(minutes=5), stopped, 1, 1, "", "")


def settings(**changes) -> Pitr:
    return Pitr(enabled=True, **changes)


def test_a_window_on_schedule_passes():
    weekly = settings(full_schedule="0 2 * * 0", diff_schedule=None, keep_full=2)
    found = [
        backup("a", "full", datetime(2026, 11, 29, 2, 10, tzinfo=UTC)),
        backup("b", "full", datetime(2026, 12, 6, 2, 10, tzinfo=UTC)),
    ]
    window = window_of(found, NOW)
    assert promised_start(weekly, NOW) == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    assert window_verdict(found, window, weekly, None, NOW).endswith("2 full backup(s), 2 kept")


def test_no_backup_at_all_fails():
    with pytest.raises(Failed, match="no physical backup in the repository"):
        window_verdict([], window_of([], None), settings(), None, NOW)


def test_a_missed_full_backup_fails():
    weekly = settings(full_schedule="0 2 * * 0", diff_schedule=None, keep_full=1)
    found = [backup("a", "full", datetime(2026, 11, 29, 2, 10, tzinfo=UTC))]
    with pytest.raises(
        Failed, match=r"no full backup since '0 2 \* \* 0' fired at 2026-12-06 02:00Z \(the newest, a, is 10d09h old\)"
    ):
        window_verdict(found, window_of(found, NOW), weekly, None, NOW)


def test_a_missed_differential_backup_fails():
    found = [backup("a", "full", datetime(2026, 12, 6, 2, 10, tzinfo=UTC))]
    with pytest.raises(Failed, match=r"no backup since '0 2 \* \* 1-6' fired at 2026-12-09 02:00Z"):
        window_verdict(found, window_of(found, NOW), settings(keep_full=1), None, NOW)


def test_a_window_shorter_than_the_retention_promises_fails():
    weekly = settings(full_schedule="0 2 * * 0", diff_schedule=None, keep_full=2)
    found = [backup("b", "full", datetime(2026, 12, 6, 2, 10, tzinfo=UTC))]  # the one before is gone
    since = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(
        Failed, match="later than the 2026-11-29 02:00Z that keep_full: 2 .* promises: a full backup is missing"
    ):
        window_verdict(found, window_of(found, NOW), weekly, since, NOW)
    # archiving began after the promised start: a young platform, nothing missing yet
    young = datetime(2026, 12, 5, tzinfo=UTC)
    assert "1 full backup(s), 2 kept" in window_verdict(found, window_of(found, NOW), weekly, young, NOW)


# -- what `backup prune` removes beside the live data ---------------------------------------------

DU = (
    "1000\t/var/lib/postgresql/data/pgdata.replaced-20261206T100000\n"
    "3000\t/var/lib/postgresql/data/pgdata.replaced-20261207T100000\n"
    "2000\t/var/lib/postgresql/data/pgdata.failed-20261205T100000\n"
    "5\t/var/lib/postgresql/data/pgdata.restore-20261208T100000\n"
    "9\t/var/lib/postgresql/data/pgdata\n"
)


def test_prune_keeps_the_newest_replaced_and_what_failed_and_never_the_live_data():
    dirs = parse_data_dirs(DU)
    assert "/var/lib/postgresql/data/pgdata" not in [d.path for d in dirs]
    assert [d.stamp for d in dirs if d.kind == "replaced"] == ["20261207T100000", "20261206T100000"]
    gone = [d.path.rsplit("/", 1)[-1] for d in to_prune(dirs, 1)]
    assert gone == ["pgdata.replaced-20261206T100000", "pgdata.restore-20261208T100000"]
    assert len(to_prune(dirs, 0)) == 3 and len(to_prune(dirs, 5)) == 1


@pytest.mark.parametrize(
    ("text", "physical"),
    [
        ("20261206-101500F", True),
        ("20261206-101500F_20261206-110000D", True),
        ("20261206-101500F_20261206-110000I", True),
        ("postgres-20261206T101500Z", False),
        ("20261206-101500", False),
    ],
)
def test_a_physical_label_is_told_from_a_dump_id(text, physical):
    assert is_label(text) is physical


VERIFY_BAD = """2026-12-06 22:16:05.486 P00   INFO: verify command begin 2.45: --stanza=shop
2026-12-06 22:16:05.684 P01   INFO: invalid checksum '20261206-221556F/pg_data/base/5/1255.zst'
2026-12-06 22:16:05.798 P00   INFO: stanza: shop
                                    status: error
                                      backup: 20261206-221556F, status: invalid, total files checked: 1262
                                        checksum invalid: 1
2026-12-06 22:16:05.798 P00   INFO: verify command end: completed successfully (314ms)
"""


def test_verify_damage_is_read_from_what_pgbackrest_says_though_it_exits_0():
    assert verify_damage(VERIFY_BAD) == [
        "backup: 20261206-221556F is invalid",
        "20261206-221556F/pg_data/base/5/1255.zst (invalid checksum)",
    ]
    good = VERIFY_BAD.replace("status: error", "status: ok").replace("status: invalid", "status: valid")
    assert verify_damage(good) == []


def test_info_that_says_the_key_is_wrong_is_said_so():
    said = "WARN: repo1: [CryptoError] unable to load info file '/r/backup/shop/backup.info': cipher header invalid"
    with pytest.raises(OperationFailed, match="not the one the repository was written with"):
        parse_info(said + "\n[]")


def test_info_read_with_another_key_is_said_so():
    repo = {
        "status": {
            "code": 99,
            "message": "[FormatError] unable to load info file '/r/backup.info':\nFormatError: "
            "key/value found outside of section at line 1: \x01\x9f garbage",
        }
    }
    text = json.dumps([{"name": "shop", "status": {"code": 99, "message": "other"}, "repo": [repo]}])
    with pytest.raises(OperationFailed, match=r"not the one the repository was written with \(\[FormatError\]"):
        parse_info(text.replace("\\u0001", "\x01"))


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"live", "restored"}, Settlement(None, "old")),  # killed before the renames
        ({"live", "kept"}, Settlement(None, "restored")),  # after them
        ({"kept", "restored"}, Settlement("restored", "restored")),  # between the swap's two renames
        ({"failed", "kept"}, Settlement("kept", "old")),  # between the undo's two
        ({"live", "failed"}, Settlement(None, "old")),  # after the undo
        ({"kept"}, Settlement("kept", "old")),
    ],
)
def test_an_interrupted_swap_always_ends_with_a_data_directory(present, expected):
    assert decide(present) == expected


def test_a_volume_with_no_data_directory_at_all_is_said_not_made_up():
    with pytest.raises(OperationFailed, match="no data directory"):
        decide({"failed"})
