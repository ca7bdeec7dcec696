"""backups.wal_archiving's verdict on a pg_stat_archiver row. Pure: no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mindscape_ops.services.contract import Failed
from mindscape_ops.services.pitr_gates import Archiver, segment, verdict

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BOUND = timedelta(seconds=180)


def row(**changes) -> Archiver:
    base = {
        "archived": 12,
        "last_wal": "00000001000000000000000B",
        "last_time": NOW - timedelta(seconds=20),
        "failed": 0,
        "failed_wal": None,
        "failed_time": None,
        "current_wal": "00000001000000000000000C",
        "now": NOW,
    }
    return Archiver(**{**base, **changes})


def test_segments_count_across_log_files():
    assert segment("0000000100000000000000FF") + 1 == segment("000000010000000100000000")


def test_archiving_on_time_passes():
    assert verdict(row(), BOUND) == "last WAL segment archived 20s ago (12 archived, 0 waiting)"


def test_an_idle_server_is_not_late():
    assert "0 waiting" in verdict(row(last_time=NOW - timedelta(hours=5)), BOUND)


def test_segments_waiting_past_the_bound_fail():
    with pytest.raises(Failed, match=r"3 WAL segment\(s\) wait; the last was archived 10m00s ago \(bound 3m00s\)"):
        verdict(row(last_time=NOW - timedelta(minutes=10), current_wal="00000001000000000000000F"), BOUND)


def test_waiting_within_the_bound_passes():
    assert "2 waiting" in verdict(row(current_wal="00000001000000000000000E"), BOUND)


def test_a_failure_since_the_last_success_fails():
    failing = row(failed=4, failed_wal="00000001000000000000000C", failed_time=NOW - timedelta(seconds=5))
    with pytest.raises(Failed) as failed:
        verdict(failing, BOUND)
    assert "archiving fails: 4 failure(s), the last on 00000001000000000000000C 5s ago" in failed.value.message
    assert "last success 20s ago" in failed.value.message


def test_a_failure_before_the_last_success_is_over():
    recovered = row(failed=4, failed_wal="00000001000000000000000A", failed_time=NOW - timedelta(minutes=3))
    assert verdict(recovered, BOUND).startswith("last WAL segment archived 20s ago")


def test_nothing_archived_yet_fails():
    with pytest.raises(Failed, match="nothing archived yet"):
        verdict(row(archived=0, last_wal=None, last_time=None), BOUND)
