"""`prune`'s decision, pure and fast: keep_last and max_age per service, the newest and the
newest verified backup always kept, leftovers of interrupted backups (and nothing else) removed;
then the command itself on a local store (no engine needed)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from mindscape_ops.backup.model import Manifest, Verification, id_of
from mindscape_ops.backup.retention import Backup, Policy, decide, leftovers

from .conftest import run_cli

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def daily(service: str, days: range, verified: set[int] = frozenset()) -> list[Backup]:
    return [Backup(f"{service}-{d}", service, NOW - timedelta(days=d), d in verified) for d in days]


def test_keep_last_keeps_exactly_the_newest_n():
    decision = decide(daily("postgres", range(10)), Policy(3, None), NOW)
    assert set(decision.keep) == {"postgres-0", "postgres-1", "postgres-2"}
    assert set(decision.remove) == {f"postgres-{d}" for d in range(3, 10)}
    assert decision.remove["postgres-9"] == "beyond keep_last 3"


def test_max_age_removes_older_ones_even_within_keep_last():
    decision = decide(daily("postgres", range(0, 45, 5)), Policy(8, timedelta(days=30)), NOW)
    assert set(decision.keep) == {f"postgres-{d}" for d in (0, 5, 10, 15, 20, 25, 30)}  # 30d: not older
    assert "older than max_age" in decision.remove["postgres-35"] and "postgres-40" in decision.remove


def test_the_newest_verified_backup_is_never_removed():
    decision = decide(daily("postgres", range(10), verified={6, 8}), Policy(2, timedelta(days=3)), NOW)
    assert set(decision.keep) == {"postgres-0", "postgres-1", "postgres-6"}
    assert decision.keep["postgres-6"] == "the newest verified" and "postgres-8" in decision.remove


def test_a_service_always_keeps_its_newest_backup_however_old():
    decision = decide(daily("redis", range(100, 103)), Policy(5, timedelta(days=30)), NOW)
    assert set(decision.keep) == {"redis-100"} and set(decision.remove) == {"redis-101", "redis-102"}


def test_retention_is_per_service():
    backups = daily("postgres", range(10, 13)) + daily("redis", range(0, 5))
    decision = decide(backups, Policy(3, None), NOW)
    assert {b for b in decision.keep if b.startswith("postgres")} == {"postgres-10", "postgres-11", "postgres-12"}
    assert set(decision.remove) == {"redis-3", "redis-4"}


def test_leftovers_are_old_objects_of_ours_without_a_manifest():
    done, killed, fresh = (
        "20260601T100000Z-postgres-aaaa",
        "20260601T090000Z-postgres-bbbb",
        "20260601T115900Z-redis-cccc",
    )
    old, young = (NOW - timedelta(hours=3)).timestamp(), (NOW - timedelta(minutes=5)).timestamp()
    objects = {
        f"{done}.backup": old,
        f"{done}.manifest.json": old,
        f"{killed}.backup.partial": old,
        f"{killed}.verify.json": old,
        f"{fresh}.backup.partial": young,  # may still be running
        "README.txt": old,  # not ours: never touched
    }
    assert leftovers(objects, {done}, id_of, NOW) == [f"{killed}.backup.partial", f"{killed}.verify.json"]


def write_backup(folder, service: str, age: timedelta, verified: bool | None = None, project: str = "pr") -> str:
    created = datetime.now(UTC) - age
    backup_id = f"{created:%Y%m%dT%H%M%SZ}-{service}-{os.urandom(2).hex()}"
    (folder / f"{backup_id}.backup").write_bytes(b"data")
    sha = "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"  # of b"data"
    manifest = Manifest(backup_id, service, project, created.isoformat(timespec="seconds"), 4, sha, "f", "1", "s")
    (folder / f"{backup_id}.manifest.json").write_bytes(manifest.to_json())
    if verified is not None:
        record = Verification(backup_id, created.isoformat(), verified, "")
        (folder / f"{backup_id}.verify.json").write_bytes(record.to_json())
    return backup_id


def test_prune_on_a_local_store_removes_what_the_policy_says_and_dry_run_nothing(tmp_path):
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: pr\nservices: {postgres: {}}\nbackups: {retention: {keep_last: 2, max_age: 10d}}\n"
    )
    folder = tmp_path / "backups" / "pr"  # the project's own space
    folder.mkdir(parents=True)
    ids = [write_backup(folder, "postgres", timedelta(days=d), verified=(d == 4) or None) for d in (0, 1, 2, 4, 20)]
    partial = folder / "20260101T000000Z-postgres-dead.backup.partial"
    partial.write_bytes(b"cut")
    os.utime(partial, (0, 0))
    (folder / "notes.txt").write_text("mine")

    before = sorted(p.name for p in folder.iterdir())
    dry = run_cli("backup", "prune", "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert set(planned["removed"]) == {ids[2], ids[4]} and planned["leftovers"] == [partial.name]
    assert sorted(p.name for p in folder.iterdir()) == before
    shown = run_cli("backup", "prune", "--dry-run", cwd=tmp_path).stderr
    assert f"would keep {ids[3]}  the newest verified" in shown and f"would keep {ids[0]}  the newest" in shown
    assert f"would remove {ids[2]}  beyond keep_last 2" in shown and f"would remove {partial.name}" in shown
    assert "dry run: nothing was removed" in shown and sorted(p.name for p in folder.iterdir()) == before

    result = run_cli("backup", "prune", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    left = {p.name for p in folder.iterdir()}
    assert left == {
        "notes.txt",
        *(f"{i}.backup" for i in (ids[0], ids[1], ids[3])),
        *(f"{i}.manifest.json" for i in (ids[0], ids[1], ids[3])),
        f"{ids[3]}.verify.json",
    }
    listed = json.loads(run_cli("backup", "list", "--json", cwd=tmp_path).stdout)
    assert [b["id"] for b in listed] == [ids[0], ids[1], ids[3]]
    assert "backup prune" in (tmp_path / ".mindscape" / "audit.log").read_text()


# -- keep_daily / keep_weekly / keep_monthly (NOW is Monday 2026-06-01, ISO week 23) -----------


def every(hours: int, count: int, service: str = "postgres") -> list[Backup]:
    return [Backup(f"{service}-{h}h", service, NOW - timedelta(hours=h)) for h in range(0, hours * count, hours)]


def test_keep_daily_keeps_the_newest_of_each_of_the_last_n_days():
    backups = every(8, 30)  # three a day for ten days: 12:00, 04:00, 20:00 the day before ...
    decision = decide(backups, Policy(1, None, keep_daily=3), NOW)
    assert set(decision.keep) == {"postgres-0h", "postgres-16h", "postgres-40h"}  # Jun 1 12:00, May 31 20:00, May 30
    assert decision.keep["postgres-16h"] == "the newest of day 2026-05-31 (keep_daily 3)"
    assert decision.remove["postgres-8h"] == "beyond keep_last 1, not kept by keep_daily"


def test_periods_count_only_days_that_have_a_backup():
    backups = daily("postgres", range(0, 30, 10)) + daily("postgres", [3])
    decision = decide(backups, Policy(1, None, keep_daily=2), NOW)
    assert set(decision.keep) == {"postgres-0", "postgres-3"} and set(decision.remove) == {"postgres-10", "postgres-20"}


def test_keep_weekly_uses_iso_weeks():
    decision = decide(daily("postgres", range(60)), Policy(1, None, keep_weekly=4), NOW)
    # W23 holds only Jun 1; then Sundays: May 31 (W22), May 24 (W21), May 17 (W20)
    assert set(decision.keep) == {"postgres-0", "postgres-1", "postgres-8", "postgres-15"}
    assert decision.keep["postgres-8"] == "the newest of week 2026-W21 (keep_weekly 4)"


def test_keep_monthly_outlives_max_age_and_reasons_add_up():
    decision = decide(daily("postgres", range(100)), Policy(7, timedelta(days=30), keep_monthly=4), NOW)
    assert set(decision.keep) == {*(f"postgres-{d}" for d in range(7)), "postgres-32", "postgres-62"}
    assert decision.keep["postgres-62"] == "the newest of month 2026-03 (keep_monthly 4)"
    assert decision.remove["postgres-40"] == "beyond keep_last 7, not kept by keep_monthly"
    both = decide(daily("postgres", range(40)), Policy(1, None, keep_weekly=2, keep_monthly=2), NOW)
    assert (
        both.keep["postgres-1"]
        == "the newest of week 2026-W22 (keep_weekly 2); the newest of month 2026-05 (keep_monthly 2)"
    )
    assert set(both.keep) == {"postgres-0", "postgres-1"}


def test_periods_are_per_service_and_never_drop_the_newest_verified():
    backups = daily("postgres", range(10), verified={9}) + daily("redis", range(5, 8))
    decision = decide(backups, Policy(1, None, keep_daily=2), NOW)
    assert set(decision.keep) == {"postgres-0", "postgres-1", "postgres-9", "redis-5", "redis-6"}
    assert decision.keep["postgres-9"] == "the newest verified"
