"""The backups gates' decisions: when a cron schedule last fired, and which services' newest
backup is missing, stale or unverified. Pure: no store, no engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from mindscape_ops.check.backups import newest_by_service, staleness, unverified
from mindscape_ops.settings.schedule import last_run

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 3 * * *", datetime(2026, 12, 2, 3, 0)),
        ("30 10 * * *", datetime(2026, 12, 2, 10, 30)),  # at the very minute
        ("31 10 * * *", datetime(2026, 12, 1, 10, 31)),
        ("*/15 * * * *", datetime(2026, 12, 2, 10, 30)),
        ("0 */6 * * *", datetime(2026, 12, 2, 6, 0)),
        ("0 3 * * 0", datetime(2026, 11, 29, 3, 0)),  # Sundays
        ("0 3 * * 1-5", datetime(2026, 12, 2, 3, 0)),
        ("0 0 1 * *", datetime(2026, 12, 1, 0, 0)),
        ("0 0 15 * 0", datetime(2026, 11, 29, 0, 0)),  # day of month OR day of week, as cron reads both
        ("@weekly", datetime(2026, 11, 29, 0, 0)),
        ("@yearly", datetime(2026, 1, 1, 0, 0)),
        ("0 12 29 2 *", datetime(2024, 2, 29, 12, 0)),
    ],
)
def test_last_run(schedule, expected):
    assert last_run(schedule, NOW) == expected.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Manifest:
    id: str
    service: str
    created: datetime


@dataclass(frozen=True)
class Verification:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Listed:
    manifest: Manifest
    verification: Verification | None


def listed(service: str, hours_ago: float, verification: Verification | None = None) -> Listed:
    created = NOW - timedelta(hours=hours_ago)
    return Listed(Manifest(f"{created:%Y%m%dT%H%M%SZ}-{service}-0000", service, created), verification)


def test_newest_per_service_from_a_newest_first_listing():
    items = [listed("redis", 1), listed("postgres", 2), listed("redis", 5)]
    newest = newest_by_service(items, ["postgres", "redis"])
    assert newest == {"postgres": items[1], "redis": items[0]}


def test_staleness_against_the_last_scheduled_run():
    due = last_run("0 3 * * *", NOW - timedelta(hours=1))  # today 03:00
    newest = {"postgres": listed("postgres", 7), "redis": listed("redis", 8)}  # 03:30 and 02:30
    problems = staleness(newest, ["postgres", "redis", "other"], due, NOW)
    assert problems[0].startswith("redis: newest backup ") and "8h00m old" in problems[0]
    assert problems[1] == "other: no backup yet"
    assert len(problems) == 2


def test_unverified_newest_backups():
    newest = {
        "postgres": listed("postgres", 1, Verification(True)),
        "redis": listed("redis", 1, None),
        "x": listed("x", 1, Verification(False, "row counts differ")),
    }
    problems = unverified(newest, ["postgres", "redis", "x", "y"])
    assert [p.split(":")[0] for p in problems] == ["redis", "x", "y"]
    assert "never verified" in problems[0] and "row counts differ" in problems[1]
