"""monitoring gates across services, through Prometheus' and Alertmanager's HTTP APIs: alerts
have somewhere to go, and Prometheus reaches its Alertmanager. A gate about one service is
that service's own (services/prometheus.py: targets and rules; services/grafana.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate

POLL_S = 0.5
DISCOVERY_MAX_S = 10.0


def alertmanager(ctx: CheckContext) -> str:
    ctx.require("prometheus")
    ctx.require("alertmanager")
    deadline = time.monotonic() + DISCOVERY_MAX_S  # Prometheus finds its Alertmanager a moment after start
    while not (active := ctx.get_json("prometheus", "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]):
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


def receivers(ctx: CheckContext) -> str:
    import yaml

    enabled = ctx.platform.services.enabled()
    if "alertmanager" not in enabled:
        ctx.require("prometheus")
        raise Failed(
            "alerts reach nobody: Prometheus evaluates alert rules but services.alertmanager is not enabled",
            "add services.alertmanager and a receiver under monitoring.receivers, then `mindscape up`",
        )
    status = ctx.get_json("alertmanager", "/api/v2/status")
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
