"""The logs.ingesting gate without an engine: which line of a container is due in the store, the
LogsQL that asks for it, the engine's timestamped output read, and the gate's verdict with a
stand-in engine and store (a due line missing fails; all there passes at once; nothing due
falls back to the marker line)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from mindscape_ops.adapters.engine_rows import line_times, rfc3339_seconds
from mindscape_ops.check.model import Failed
from mindscape_ops.config.loader import load
from mindscape_ops.provision.convergence import Observed
from mindscape_ops.services import victorialogs_gates as logs
from mindscape_ops.services.victorialogs import SERVICE_FIELD

NOW = 1_796_542_200.0


def test_the_newest_line_due_is_one_at_least_settle_seconds_old_within_the_window():
    times = [NOW - 90_000, NOW - 60, NOW - logs.SETTLE_S - 0.5, NOW - 2, NOW - 0.1]
    assert logs.newest_due(times, NOW) == NOW - logs.SETTLE_S - 0.5
    assert logs.newest_due([NOW - 3, NOW - 1], NOW) is None  # not yet due: the driver may still hold them
    assert logs.newest_due([NOW - logs.WINDOW_S - 1], NOW) is None  # older than the store keeps
    assert logs.newest_due([], NOW) is None


def test_the_query_asks_each_service_from_its_own_due_line_on():
    logsql = logs.delivered_query("shop", {"gateway": 1_796_542_100.25, "postgres": 1_796_541_000.0})
    assert logsql.startswith('"event.attrs.io.mindscape.project":="shop" AND (')
    assert '("event.attrs.io.mindscape.service":="gateway" AND _time:>=2026-12-06T07:28:20.249000Z)' in logsql
    assert '("event.attrs.io.mindscape.service":="postgres" AND _time:>=2026-12-06T07:09:59.999000Z)' in logsql
    assert logsql.endswith('| stats by ("event.attrs.io.mindscape.service") count() as found')
    rows = [{SERVICE_FIELD: "gateway", "found": "3"}, {SERVICE_FIELD: "postgres", "found": "0"}]
    assert logs.delivered(rows) == {"gateway"}


def test_the_engines_timestamped_output_reads_as_times_multiplexed_or_not():
    text = b"2026-12-06T07:28:20.249000123Z GET /x 200\n2026-12-06T07:28:21Z ready\nno time here\n"
    assert line_times(text) == pytest.approx([1_796_542_100.249000123, 1_796_542_101.0])
    frames = b"".join(
        bytes([stream, 0, 0, 0]) + len(line).to_bytes(4, "big") + line
        for stream, line in zip((1, 2, 1), text.splitlines(keepends=True), strict=True)
    )
    assert line_times(frames) == pytest.approx([1_796_542_100.249000123, 1_796_542_101.0])
    assert rfc3339_seconds("2026-12-06T07:28:20+01:00") is None and rfc3339_seconds("yesterday") is None


class FakeEngine:
    def __init__(self, output: dict[str, list[float]]) -> None:
        self.output, self.asked = output, []
        self.started: dict[str, str] = {}

    def state(self, container):
        return {"StartedAt": self.started.get(container, "2020-01-01T00:00:00.123456789Z")}

    def output_times(self, container, since, until, tail="all"):
        """As the engine: the last `tail` lines first, then those in the window."""
        self.asked.append((container, tail))
        times = self.output.get(container, [])
        return [t for t in (times[-tail:] if tail != "all" else times) if since <= t <= until]


@pytest.fixture
def gate(tmp_path: Path, monkeypatch):
    """The gate against a platform of the store, postgres and the gateway, with a stand-in
    engine (output per container) and store (the services it holds a due line of)."""
    path = tmp_path / "platform.yaml"
    path.write_text("version: 1\nproject: shop\nservices:\n  victorialogs: {}\n  postgres: {}\n  gateway: {}\n")
    platform = load([path], env={}).platform
    running = {s: Observed(f"shop-{s}", s, "running", "healthy") for s in ("victorialogs", "postgres", "gateway")}
    ctx = SimpleNamespace(
        platform=platform,
        as_run=lambda: platform,
        project=SimpleNamespace(platform=platform),
        containers=lambda: running,
    )
    # the store's count of lines taken through the drivers' listener, and what a post does to it
    state = SimpleNamespace(engine=FakeEngine({}), stored=set(), accepting=True, queries=0, taken=100.0, posted=[])
    state.post = lambda event: 200  # the status a post gets; `takes` says whether the count moves
    state.takes = True

    def post_event(url, event):
        state.posted.append((url, event))
        status = state.post(event)
        if status == 200 and state.takes:
            state.taken += 1
        return status

    def query(base, logsql, limit=None):
        state.queries += 1
        return [{SERVICE_FIELD: s, "found": "1"} for s in sorted(state.stored) if f'="{s}"' in logsql]

    monkeypatch.setattr(logs, "store_base", lambda ctx: "http://127.0.0.1:9")
    monkeypatch.setattr("mindscape_ops.adapters.logstore.accepting", lambda url: state.accepting)
    monkeypatch.setattr("mindscape_ops.adapters.logstore.query", query)
    monkeypatch.setattr("mindscape_ops.adapters.logstore.counter", lambda base, series: state.taken)
    monkeypatch.setattr("mindscape_ops.adapters.logstore.post_event", post_event)
    monkeypatch.setattr("mindscape_ops.adapters.engine_socket.reader", lambda timeout: state.engine)
    monkeypatch.setattr(logs, "by_marker", lambda ctx, base: "by the marker line")
    return lambda: logs.ingesting(ctx), state


def test_every_due_line_in_the_store_passes_at_once(gate):
    run, state = gate
    now = time.time()
    state.engine = FakeEngine({"shop-gateway": [now - 30, now - 9, now - 1], "shop-postgres": [now - 600]})
    state.stored = {"gateway", "postgres"}
    started = time.monotonic()
    message = run()
    assert time.monotonic() - started < 0.5 and state.queries == 1
    assert "each of 2 running services" in message and "(gateway, postgres)" in message
    assert "the freshest is 9 s old" in message and "nothing due" not in message
    assert "shop-victorialogs" not in {c for c, _ in state.engine.asked}  # its own output is not shipped


def test_a_due_line_missing_from_the_store_fails_naming_the_service(gate, monkeypatch):
    run, state = gate
    now = time.time()
    overdue = now - logs.SETTLE_S - logs.LATE_S - 1  # past its grace: no waiting
    state.engine = FakeEngine({"shop-gateway": [now - 9], "shop-postgres": [overdue]})
    state.stored = {"gateway"}
    with pytest.raises(Failed) as failed:
        run()
    assert "postgres's newest due line, of" in failed.value.message and "gateway" not in failed.value.message
    state.stored = {"gateway", "postgres"}
    state.engine.output["shop-gateway"] = [now - 1]  # nothing due from it now
    assert run().endswith(
        "(postgres) is in the store by its labels; the freshest is 16 s old; nothing due from gateway"
    )
    assert "log driver does not deliver" in failed.value.message


def test_a_due_line_late_by_less_than_the_grace_is_waited_for(gate, monkeypatch):
    run, state = gate
    now = time.time()
    state.engine = FakeEngine({"shop-gateway": [now - 8]})
    monkeypatch.setattr(logs, "POLL_S", 0.01)
    answers = iter([set(), set(), {"gateway"}])  # the store shows it at the third look
    monkeypatch.setattr(logs, "delivered", lambda rows: next(answers))
    assert "each of 1 running services" in run()


def test_the_store_not_answering_where_the_engine_posts_fails(gate):
    run, state = gate
    state.accepting = False
    with pytest.raises(Failed, match="does not answer at http://127.0.0.1:9429"):
        run()


def test_nothing_due_falls_back_to_the_marker_line(gate):
    run, state = gate
    now = time.time()
    state.engine = FakeEngine({"shop-gateway": [now - 2], "shop-postgres": [now - logs.WINDOW_S - 5]})
    assert run() == "by the marker line"


def test_output_the_engine_cannot_read_is_nothing_due(gate):
    """The engine keeps no copy of a shipped container's output when its cache is disabled."""
    from mindscape_ops.errors import OperationFailed

    run, state = gate

    def unreadable(container, since, until, tail="all"):
        raise OperationFailed("engine answered 501: configured logging driver does not support reading")

    state.engine.output_times = unreadable
    assert run() == "by the marker line"


def test_a_burst_gets_a_longer_tail_and_a_busy_container_the_seconds_before_its_lines_were_due(gate):
    run, state = gate
    now = time.time()
    burst = [now - 60] + [now - 1 + i / 1000 for i in range(logs.TAIL + 5)]  # this check's own requests
    busy = [now - 12 + i / 500 for i in range(12 * 500)]  # 500 lines a second
    state.engine = FakeEngine({"shop-gateway": burst, "shop-postgres": busy})
    state.stored = {"gateway", "postgres"}
    assert "(gateway, postgres)" in run()
    asked = state.engine.asked
    assert [tail for c, tail in asked if c == "shop-gateway"] == [logs.TAIL, logs.LONG_TAIL]
    assert [tail for c, tail in asked if c == "shop-postgres"] == [logs.TAIL, logs.LONG_TAIL, "all"]


def test_what_gates_share_is_learnt_once_per_key_and_one_key_never_waits_for_another(tmp_path: Path):
    """The engine's containers are asked for while the rendering (a slow make) is in progress."""
    import threading

    from mindscape_ops.check.context import CheckContext

    project = SimpleNamespace(workspace=SimpleNamespace(read_secrets=dict))
    ctx = CheckContext(project)  # type: ignore[arg-type]
    containers_known, made = threading.Event(), []

    def render():
        made.append("rendered")
        return "files" if containers_known.wait(5) else "waited for the containers in vain"

    slow = threading.Thread(target=lambda: made.append(ctx.once("rendered", render)))
    slow.start()
    time.sleep(0.05)  # the rendering holds its key now
    assert ctx.once("containers", lambda: {"gateway": "running"}) == {"gateway": "running"}
    containers_known.set()
    slow.join(5)
    assert made == ["rendered", "files"]
    assert ctx.once("rendered", lambda: "again") == "files"  # learnt once


def test_only_lines_of_the_containers_current_run_prove_ingestion():
    """A silent platform: a container restarted an hour ago has written nothing since, and its
    lines from before are in the store: they prove an earlier delivery, not today's."""
    engine = FakeEngine({"shop-postgres": [NOW - 7200, NOW - 3700]})
    assert logs.newest_line_due(engine, "shop-postgres", NOW) == NOW - 3700  # no start known: the window
    assert logs.newest_line_due(engine, "shop-postgres", NOW, started=NOW - 3600) is None
    engine.output["shop-postgres"].append(NOW - 60)  # it wrote a line since
    assert logs.newest_line_due(engine, "shop-postgres", NOW, started=NOW - 3600) == NOW - 60
    assert logs.newest_line_due(engine, "shop-postgres", NOW, started=NOW - 1) is None  # nothing can be due yet


def test_the_gate_reads_each_containers_start_from_the_engine(gate):
    run, state = gate
    now = time.time()
    state.engine = FakeEngine({"shop-postgres": [now - 3700], "shop-gateway": [now - 30]})
    state.engine.started = {"shop-postgres": datetime.fromtimestamp(now - 3000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    state.stored = {"gateway", "postgres"}  # postgres' old line is there: it proves nothing now
    message = run()
    assert "(gateway)" in message and message.endswith("; nothing due from postgres")


def test_old_lines_in_the_store_do_not_pass_a_store_that_takes_no_new_line(gate, monkeypatch):
    """Every due line is a day-old start-up line the store holds; the store answers, but a line
    posted to it now does not move its count of lines taken (read-only, its disk full): fail,
    at once."""
    run, state = gate
    monkeypatch.setattr(logs, "TAKE_S", 0.05)
    now = time.time()
    state.engine = FakeEngine({"shop-gateway": [now - 80_000], "shop-postgres": [now - 80_000]})
    state.stored = {"gateway", "postgres"}
    assert "each of 2 running services" in run()  # taking lines: passes
    state.takes = False
    started = time.monotonic()
    with pytest.raises(Failed, match=r"did not move: it stores no new lines"):
        run()
    assert time.monotonic() - started < 1.0
    state.post = lambda event: 503
    with pytest.raises(Failed, match=r"did not take a line posted to http://127.0.0.1:9429 \(it answered HTTP 503\)"):
        run()


def test_the_line_posted_is_the_projects_own_as_a_driver_posts_it(gate):
    run, state = gate
    now = time.time()
    state.engine = FakeEngine({"shop-gateway": [now - 9]})
    state.stored = {"gateway"}
    run()
    [(url, event)] = state.posted
    assert url == "http://127.0.0.1:9429"
    assert event["event"]["attrs"] == {"io.mindscape.project": "shop", "io.mindscape.service": "mindscape-check"}
    assert event["event"]["tag"] == "shop-mindscape-check" and "mindscape check" in event["event"]["line"]
    assert abs(float(event["time"]) - now) < 5


def test_the_stores_counter_is_read_from_its_metrics_text():
    from mindscape_ops.adapters.logstore import series_value

    text = 'vl_rows_ingested_total{type="jsonline"} 7\nvl_rows_ingested_total{type="splunk"} 1234\n'
    assert series_value(text, logs.INGESTED) == 1234.0
    assert series_value("vl_other 1\n", logs.INGESTED) == 0.0  # nothing taken yet


def test_an_auto_ingest_port_is_posted_to_as_up_picked_it_and_never_picked_fails(tmp_path: Path, monkeypatch):
    from mindscape_ops.check.context import CheckContext
    from mindscape_ops.workspace.project import open_project

    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: shop\nservices:\n  victorialogs: {ingest_port: auto}\n"
    )
    ctx = CheckContext(open_project([tmp_path / "platform.yaml"]))
    monkeypatch.setattr(logs, "store_base", lambda ctx: "http://127.0.0.1:9")
    with pytest.raises(Failed, match="ingest_port is auto and no port was picked yet"):
        logs.ingesting(ctx)
    (tmp_path / ".mindscape").mkdir()
    (tmp_path / ".mindscape" / "state.json").write_text('{"ports": {"victorialogs.ingest_port": 41999}}')
    asked = []
    monkeypatch.setattr("mindscape_ops.adapters.logstore.accepting", lambda url: asked.append(url) or False)
    ctx = CheckContext(open_project([tmp_path / "platform.yaml"]))
    with pytest.raises(Failed, match="does not answer at http://127.0.0.1:41999"):
        logs.ingesting(ctx)
    assert asked == ["http://127.0.0.1:41999"]
