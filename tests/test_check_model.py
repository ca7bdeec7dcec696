"""The pure parts of `mindscape check`: running gates (concurrency, timeouts, errors),
selection, the exit code, and the decisions each gate group makes from what it read."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from mindscape_ops.check import database, report
from mindscape_ops.check.model import Failed, Gate, Result, Skipped, Status, exit_code, run_gates, select
from mindscape_ops.errors import EnvironmentUnusable
from mindscape_ops.services import alertmanager_gates, gateway, prometheus


def passing(message: str = "fine"):
    return lambda ctx: message


def failing(message: str, remedy: str | None = None):
    def run(ctx):
        raise Failed(message, remedy)

    return run


def test_gates_run_concurrently_so_the_run_takes_about_the_slowest_gate():
    def slow(ctx):
        time.sleep(0.3)
        return "slept"

    gates = [Gate(f"services.g{i}", slow, "r") for i in range(8)]
    started = time.monotonic()
    results = run_gates(gates, None)
    took = time.monotonic() - started
    assert [r.status for r in results] == [Status.PASS] * 8
    assert took < 0.9, took  # eight 0.3 s gates, not 2.4 s
    assert all(250 <= r.duration_ms < 900 for r in results)


def test_a_gate_past_its_own_timeout_fails_with_its_remedy_and_does_not_hold_the_run():
    hang = threading.Event()
    gates = [
        Gate("monitoring.stuck", lambda ctx: hang.wait(30) and "never", "look at it", timeout=0.2),
        Gate("config.quick", passing(), "r"),
    ]
    started = time.monotonic()
    stuck, quick = run_gates(gates, None)
    assert time.monotonic() - started < 1.0
    assert stuck.status is Status.FAIL and "did not finish within 0.2s" in stuck.message
    assert stuck.remedy == "look at it" and quick.status is Status.PASS
    hang.set()


def test_failed_skipped_and_crashing_gates():
    def environment(ctx):
        raise EnvironmentUnusable("cannot reach the Docker engine", "is it running?")

    def crash(ctx):
        raise KeyError("data")

    gates = [
        Gate("services.a", failing("it broke"), "default remedy"),
        Gate("services.b", failing("it broke", "better remedy"), "default remedy"),
        Gate("services.c", lambda ctx: (_ for _ in ()).throw(Skipped("not enabled")), "r"),
        Gate("services.d", environment, "default remedy"),
        Gate("services.e", crash, "default remedy"),
    ]
    a, b, c, d, e = run_gates(gates, None)
    assert (a.status, a.remedy) == (Status.FAIL, "default remedy")
    assert b.remedy == "better remedy"
    assert (c.status, c.message, c.remedy) == (Status.SKIP, "not enabled", "")
    assert d.status is Status.FAIL and d.message == "could not run: cannot reach the Docker engine"
    assert d.remedy == "is it running?"
    assert e.status is Status.FAIL and e.message.startswith("could not run:") and e.remedy == "default remedy"


def test_messages_and_remedies_are_redacted():
    gates = [Gate("security.x", failing("saw hunter2hunter2 in a file", "rotate hunter2hunter2"), "r")]
    (result,) = run_gates(gates, None, redact=lambda text: text.replace("hunter2hunter2", "***"))
    assert "hunter2" not in result.message + result.remedy


def result(id: str, status: Status, severity: str = "error") -> Result:
    return Result(id, id.split(".")[0], status, severity, f"{id} said so", "do this" if status == "fail" else "", 5)


def test_exit_code_counts_only_failed_error_gates():
    assert exit_code([result("a.x", Status.PASS), result("a.y", Status.SKIP)]) == 0
    assert exit_code([result("a.x", Status.FAIL, "warning")]) == 0
    assert exit_code([result("a.x", Status.FAIL, "warning"), result("a.y", Status.FAIL)]) == 1


def test_only_and_skip_select_groups():
    gates = [Gate(f"{g}.x", passing(), "r") for g in ("config", "services", "security", "monitoring")]
    assert [g.group for g in select(gates, only=["security", "config"])] == ["config", "security"]
    assert [g.group for g in select(gates, skip=["services"])] == ["config", "security", "monitoring"]
    assert [g.group for g in select(gates, only=["security"], skip=["security"])] == []


def test_json_and_junit_agree():
    results = [
        result("config.valid", Status.PASS),
        result("services.redis", Status.FAIL),
        result("monitoring.receivers", Status.FAIL, "warning"),
        result("backups.fresh", Status.SKIP),
    ]
    rows = json.loads(report.as_json(results))
    assert [set(r) for r in rows] == [{"id", "group", "status", "severity", "message", "remedy", "duration_ms"}] * 4
    root = ET.fromstring(report.junit(results, wall_ms=40))
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("time")) == ("4", "2", "1", "0.040")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {r["id"] for r in rows}
    for row in rows:
        case = cases[row["id"]]
        assert case.get("classname") == f"mindscape.{row['group']}"
        failure, skipped = case.find("failure"), case.find("skipped")
        assert (failure is not None) == (row["status"] == "fail")
        assert (skipped is not None) == (row["status"] == "skip")
        if failure is not None:
            assert failure.get("type") == row["severity"] and row["remedy"] in failure.text
    assert report.summary(results) == "1 pass, 1 fail, 1 warn, 1 skip"


def test_table_groups_by_area_in_a_fixed_order():
    from rich.console import Console

    results = [result("security.headers", Status.PASS), result("config.valid", Status.PASS)]
    console = Console(width=200, record=True)
    console.print(report.table(results, "gates"))
    text = console.export_text()
    assert text.index("config") < text.index("config.valid") < text.index("security") < text.index("security.headers")


# -- the decisions each group makes -----------------------------------------------------------


def test_header_problems_name_missing_and_wrong_values():
    wanted = {"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
    got = {"x-frame-options": "DENY", "Referrer-Policy": "origin"}
    assert gateway.header_problems(wanted, got) == [
        "Referrer-Policy is 'origin', expected 'no-referrer'",
        "X-Content-Type-Options missing",
    ]


def test_expected_headers_match_what_the_gateway_template_writes():
    """Every literal `add_header NAME "value"` in the rendered nginx.conf is what the gate expects."""
    import re

    from mindscape_ops.config.loader import load
    from mindscape_ops.render import render_platform

    from .conftest import EXAMPLES

    loaded = load([EXAMPLES / "local" / "platform.yaml"])
    conf = render_platform(loaded.platform)["deploy/gateway/nginx.conf"]
    written = dict(re.findall(r'add_header ([A-Za-z-]+) "([^"$]*)" always;', conf))
    wanted = gateway.expected_headers(loaded.platform.security)
    assert {k: v.replace("\\", "") for k, v in written.items() if k in wanted} == wanted
    assert set(wanted) <= set(written)


def test_targets_down_and_not_yet_scraped():
    active = [
        {"health": "up", "labels": {"job": "a"}},
        {"health": "down", "labels": {"job": "redis_exporter"}, "lastError": "connection refused"},
        {"health": "unknown", "labels": {"job": "c"}},
    ]
    assert prometheus.down_targets(active) == (["redis_exporter (connection refused)"], 1)


def test_rule_groups_not_loaded_or_failing():
    wanted = prometheus.expected_rule_groups({"services.yml": "groups:\n  - name: redis\n  - name: disk\n"})
    assert wanted == {"redis": "services.yml", "disk": "services.yml"}
    loaded = [
        {"name": "redis", "file": "/etc/prometheus/rules/services.yml", "rules": [{"name": "R", "health": "ok"}]},
        {"name": "x", "file": "/etc/prometheus/rules/custom.yml", "rules": [{"name": "Bad", "lastError": "boom"}]},
    ]
    assert prometheus.rule_problems(wanted, loaded) == ["group disk (services.yml) not loaded", "x/Bad: boom"]


def test_a_receiver_without_integrations_is_a_sink():
    real, sink = alertmanager_gates.sinks([{"name": "default"}, {"name": "ops", "webhook_configs": [{"url": "x"}]}])
    assert (real, sink) == (["ops"], ["default"])


@pytest.mark.parametrize(
    ("state", "out_of_order", "expected"),
    [
        ("applied", False, []),
        ("pending", False, ["1_a.sql pending"]),
        ("pending", True, ["1_a.sql pending, out of order (sorts before the newest applied)"]),
        ("changed", False, ["1_a.sql changed"]),
        ("missing", False, ["1_a.sql missing"]),
    ],
)
def test_migration_problems(state, out_of_order, expected):
    from mindscape_ops.migrate.pending import Entry, State

    entry = Entry("1", "a", State(state), None, None, out_of_order)
    assert database.problems([entry]) == expected
