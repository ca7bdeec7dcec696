"""Alertmanager's gates (group monitoring), through Prometheus' and Alertmanager's HTTP APIs:
alerts have somewhere to go, and Prometheus reaches its Alertmanager. They are its
`ServiceDef.platform_gates`: they run whether or not it is enabled, as a Prometheus without
Alertmanager is the case `receivers` warns about."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from mindscape_ops.services.contract import Failed, Gate, GateContext

POLL_S = 0.5
DISCOVERY_MAX_S = 10.0
SERVICE, EVALUATOR = "alertmanager", "prometheus"  # the service, and the one that sends it alerts


def alertmanager(ctx: GateContext) -> str:
    ctx.require(EVALUATOR)
    ctx.require(SERVICE)
    deadline = time.monotonic() + DISCOVERY_MAX_S  # Prometheus finds its Alertmanager a moment after start
    while not (active := ctx.get_json(EVALUATOR, "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]):
        if time.monotonic() > deadline:
            raise Failed("Prometheus has no active Alertmanager")
        time.sleep(POLL_S)
    return f"Prometheus sends alerts to {', '.join(a['url'] for a in active)}"


def sinks(receivers: Iterable[Mapping[str, Any]], ignore: Iterable[str] = ("watchdog",)) -> tuple[list[str], list[str]]:
    """Pure: (receivers that deliver somewhere, receivers with no integration at all). The
    Watchdog's receiver is left out: it proves alerting works, it tells nobody of an alert."""
    real, sink = [], []
    for receiver in receivers:
        if receiver.get("name") in ignore:
            continue
        delivers = any(key.endswith("_configs") and value for key, value in receiver.items())
        (real if delivers else sink).append(receiver.get("name", "?"))
    return real, sink


def receivers(ctx: GateContext) -> str:
    import yaml

    enabled = ctx.platform.services.enabled()
    if SERVICE not in enabled:
        ctx.require(EVALUATOR)
        raise Failed(
            f"alerts reach nobody: Prometheus evaluates alert rules but services.{SERVICE} is not enabled",
            f"add services.{SERVICE} and a receiver under monitoring.receivers, then `mindscape up`",
        )
    status = ctx.get_json(SERVICE, "/api/v2/status")
    config = yaml.safe_load(status["config"]["original"]) or {}
    real, sink = sinks(config.get("receivers") or [])
    if not real:
        raise Failed(f"alerts reach nobody: no receiver delivers anywhere ({', '.join(sink) or 'none'})")
    return f"alerts reach {', '.join(real)}"


GATES = (
    Gate(
        "monitoring.receivers",
        receivers,
        "add a receiver under monitoring.receivers (webhook, slack, email, pagerduty), then `mindscape up`",
        severity="warning",
    ),
    Gate(
        "monitoring.alertmanager",
        alertmanager,
        "`mindscape up alertmanager`; `mindscape logs prometheus` shows why it cannot reach it",
        timeout=DISCOVERY_MAX_S + 5,
    ),
)
