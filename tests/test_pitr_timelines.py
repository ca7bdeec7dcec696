"""The archived WAL a point-in-time restore needs: the repository's listing read, the segments
counted across log files and timelines, the timelines a recovery reads followed along their
`.history` files, and what is missing named before anything live is touched. No engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mindscape_ops.services.pitr_info import (
    history_files,
    missing_segments,
    parse_archive,
    timeline_at,
    timelines_along,
)


def listing(*names_and_times: tuple[str, int]) -> str:
    rows = {".": {"type": "path"}, "16-1": {"type": "path"}, "16-1/0000000100000000": {"type": "path"}}
    for name, at in names_and_times:
        rows[f"16-1/{name[:16]}/{name}-{'ab' * 20}.zst"] = {"type": "file", "size": 9, "time": at}
    rows["16-1/0000000100000000/000000010000000000000002.00000028.backup"] = {"type": "file", "size": 1, "time": 5}
    rows["00000002.history"] = {"type": "file", "size": 1, "time": 5}
    return json.dumps(rows)


SEGMENTS = listing(
    ("000000010000000000000002", 100),
    ("000000010000000000000003", 200),
    ("000000010000000000000005", 400),  # 4 is missing
    ("000000010000000000000006", 500),
)


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_archive_listing_keeps_only_segments():
    found = parse_archive(SEGMENTS)
    assert [s.name for s in found] == [f"00000001000000000000000{n}" for n in (2, 3, 5, 6)]
    assert found[0].stored == at(100)


def test_a_gap_before_the_target_is_named_and_one_after_it_is_not():
    found = parse_archive(SEGMENTS)
    start = "000000010000000000000002"
    assert missing_segments(found, start, None) == ["000000010000000000000004"]  # latest
    assert missing_segments(found, start, at(450)) == ["000000010000000000000004"]
    assert missing_segments(found, start, at(150)) == []  # held by segment 3, stored at 200
    assert missing_segments(found, start, None, stop="000000010000000000000003") == []  # a backup's own WAL
    assert missing_segments(found, "000000010000000000000005", None) == []  # a backup after the gap


def test_segments_count_across_log_files_and_timelines():
    found = parse_archive(listing(("0000000100000000000000FF", 1), ("000000020000000100000000", 2)))
    assert missing_segments(found, "0000000100000000000000FF", None) == []


# two timelines: a restore to a time in segment 5 of timeline 1 started timeline 2 there; the
# live database went on writing timeline 1 (segments 6 to 8) until the swap stopped it, and the
# restored copy archived its copy of segment 5 of timeline 1 as `.partial`
TWO = {1: 0x5000100}  # 00000002.history


def timelines(*names_and_times: tuple[str, int], partials: tuple[str, ...] = ()) -> list:
    rows = json.loads(listing(*names_and_times))
    for name in partials:
        rows[f"16-1/{name[:16]}/{name}.partial-{'cd' * 20}.zst"] = {"type": "file", "size": 9, "time": 1}
    return parse_archive(json.dumps(rows))


def two(*, drop: tuple[str, ...] = ()) -> list:
    names = [("00000001000000000000000" + str(n), 100 * n) for n in range(2, 9)]
    names += [("00000002000000000000000" + str(n), 1000 + 100 * n) for n in range(5, 9)]
    return timelines(*(n for n in names if n[0] not in drop), partials=("000000010000000000000005",))


def test_the_timelines_a_recovery_reads_follow_the_history():
    assert timelines_along(1, {}) == [(1, 0)]
    assert timelines_along(2, TWO) == [(1, 0), (2, 5)]
    three = {1: 0x4000028, 2: 0x6000060}
    assert timelines_along(3, three) == [(1, 0), (2, 4), (3, 6)]
    along = timelines_along(3, three)
    assert [timeline_at(along, at) for at in (3, 4, 5, 6, 9)] == [1, 2, 2, 3, 3]


def test_two_timelines_the_old_one_after_the_switch_and_its_partial_segment_are_not_needed():
    start = "000000010000000000000002"
    assert missing_segments(two(), start, None, timeline=2, history=TWO) == []
    # timeline 1 past the switch (its segments 5 to 8) is not needed along timeline 2
    found = two(drop=tuple(f"00000001000000000000000{n}" for n in range(5, 9)))
    assert missing_segments(found, start, None, timeline=2, history=TWO) == []
    assert missing_segments(found, start, at(1650), timeline=2, history=TWO) == []


def test_two_timelines_a_segment_missing_on_the_new_one_is_named_though_the_old_one_has_it():
    start = "000000010000000000000002"
    found = two(drop=("000000020000000000000006",))  # timeline 1's segment 6 is there
    assert missing_segments(found, start, None, timeline=2, history=TWO) == ["000000020000000000000006"]
    assert missing_segments(found, start, at(1650), timeline=2, history=TWO) == ["000000020000000000000006"]
    assert missing_segments(found, start, at(1450), timeline=2, history=TWO) == []  # held by segment 5
    # the switch point's segment is read on the new timeline
    found = two(drop=("000000020000000000000005",))
    assert missing_segments(found, start, None, timeline=2, history=TWO) == ["000000020000000000000005"]
    # before the switch: named on the old timeline
    found = two(drop=("000000010000000000000003",))
    assert missing_segments(found, start, None, timeline=2, history=TWO) == ["000000010000000000000003"]
    # along timeline 1 (its own history), timeline 2's segments count for nothing
    found = two(drop=("000000010000000000000007",))
    assert missing_segments(found, start, None) == ["000000010000000000000007"]


def test_three_timelines_and_an_abandoned_one():
    three = {1: 0x4000028, 2: 0x6000060}  # 00000003.history
    names = [(f"0000000100000000000000{n:02X}", 100 * n) for n in range(2, 8)]  # 1 went on to 7
    names += [(f"0000000200000000000000{n:02X}", 1000 + 100 * n) for n in range(4, 8)]  # 2 went on to 7
    names += [(f"0000000300000000000000{n:02X}", 2000 + 100 * n) for n in range(6, 12)]
    names += [(f"0000000400000000000000{n:02X}", 3000 + 100 * n) for n in range(5, 20)]  # abandoned, off 2
    start = "000000010000000000000002"
    assert missing_segments(timelines(*names), start, None, timeline=3, history=three) == []
    # the abandoned timeline's newer segments do not stretch the window
    dropped = [n for n in names if n[0] != "00000003000000000000000B"]
    assert missing_segments(timelines(*dropped), start, None, timeline=3, history=three) == []  # the end: not a gap
    dropped = [n for n in names if n[0] not in ("000000030000000000000008", "000000020000000000000005")]
    assert missing_segments(timelines(*dropped), start, None, timeline=3, history=three) == [
        "000000020000000000000005",
        "000000030000000000000008",
    ]
    # a backup taken on timeline 2 needs nothing of timeline 1
    dropped = [n for n in names if not n[0].startswith("00000001")]
    assert missing_segments(timelines(*dropped), "000000020000000000000004", None, timeline=3, history=three) == []


def test_history_files_are_found_in_the_listing():
    rows = json.loads(listing(("000000010000000000000002", 1)))
    rows["16-1/00000002.history"] = {"type": "file", "size": 40, "time": 5}
    rows["16-1/00000003.history"] = {"type": "file", "size": 80, "time": 6}
    assert history_files(json.dumps(rows)) == {2: "16-1/00000002.history", 3: "16-1/00000003.history"}


def test_a_restore_along_a_timeline_whose_history_the_repository_lacks_names_it(monkeypatch):
    from mindscape_ops.backup import physical

    found = two(drop=("000000020000000000000006",))
    asked = []

    def repo(_ctx, *args):
        asked.append(args)
        return "1\t0/5000100\tbefore 2026-12-06 10:15:00+00\n"

    monkeypatch.setattr(physical, "_pgbackrest_repo", repo)
    monkeypatch.setattr(physical, "_archive_path", lambda _ctx: "archive/shop")
    archive = physical._Archive(None, found, {2: "16-1/00000002.history"})
    assert archive.missing("000000010000000000000002", None, 2) == ["000000020000000000000006"]
    assert asked == [("repo-get", "archive/shop/16-1/00000002.history")]
    lacking = physical._Archive(None, two(), {})
    assert lacking.missing("000000010000000000000002", None, 2) == ["00000002.history"]
