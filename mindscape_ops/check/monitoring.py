"""monitoring gates, through Prometheus', Alertmanager's and Grafana's HTTP APIs: every
target up, every rendered rule group loaded and evaluating cleanly, alerts have somewhere
to go, and Grafana has its datasource. A gate about one service is attached to that
service's ServiceDef (PROMETHEUS_GATES, ...); Prometheus-to-Alertmanager needs both."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate

POLL_S = 0.5
RESCRAPE_MAX_S = 50.0  # the targets gate's timeout is 60 s
DISCOVERY_MAX_S = 10.0


def down_targets(active: Iterable[Mapping[str, Any]]) -> tuple[list[str], int]:
    """Pure: (targets not up, each with its last error; how many are not scraped yet)."""
    down, unknown = [], 0
    for target in active:
        health = target.get("health")
        if health == "unknown":
            unknown += 1
        elif health != "up":
            where = target.get("labels", {}).get("job") or target.get("scrapeUrl", "?")
            down.append(f"{where} ({target.get('lastError') or health})")
    return down, unknown


def targets(ctx: CheckContext) -> str:
    active = active_targets(ctx)
    if any(t.get("health") == "down" for t in active):
        active = rescraped(ctx, active)
    down, unknown = down_targets(active)
    if down:
        raise Failed(f"{len(down)} of {len(active)} targets down: {'; '.join(down)}")
    if not active:
        raise Failed("Prometheus scrapes no target", "check deploy/prometheus/prometheus.yml: `mindscape render`")
    note = f" ({unknown} not scraped yet)" if unknown else ""
    return f"{len(active) - unknown} of {len(active)} targets up{note}"


def active_targets(ctx: CheckContext) -> list[dict[str, Any]]:
    return ctx.get_json("prometheus", "/api/v1/targets?state=active")["data"]["activeTargets"]


def rescraped(ctx: CheckContext, active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets again once each one that was down has been scraped once more (or after a
    scrape interval): right after `up`, Prometheus scraped services that were still starting."""
    first = {t.get("scrapeUrl"): t.get("lastScrape") for t in active if t.get("health") == "down"}
    deadline = time.monotonic() + min(ctx.platform.services.prometheus.scrape_interval.seconds + 2, RESCRAPE_MAX_S)
    while time.monotonic() < deadline:
        time.sleep(POLL_S)
        active = active_targets(ctx)
        if all(t.get("lastScrape") != first[t.get("scrapeUrl")] for t in active if t.get("scrapeUrl") in first):
            break
    return active


def expected_rule_groups(files: Mapping[str, str]) -> dict[str, str]:
    """Pure: rule group name -> rule file name, from the rule files' texts (name -> text)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: a tenth of the CPU (36 ms to 4)
    wanted = {}
    for name, text in files.items():
        for group in (yaml.load(text, Loader=loader) or {}).get("groups") or []:
            wanted[group["name"]] = name
    return wanted


def rule_files(ctx: CheckContext) -> dict[str, str]:
    """The rule files Prometheus reads (its rules folder, as mounted): name -> text."""
    folder = ctx.project.root / ctx.platform.paths.deploy / "prometheus" / "rules"
    found = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    return {path.name: path.read_text() for path in found}


def rule_problems(wanted: Mapping[str, str], loaded: Iterable[Mapping[str, Any]]) -> list[str]:
    """Pure: rendered groups Prometheus has not loaded, and rules whose last evaluation failed."""
    loaded = list(loaded)
    have = {(g["name"], PurePosixPath(g.get("file", "")).name) for g in loaded}
    problems = [f"group {name} ({file}) not loaded" for name, file in wanted.items() if (name, file) not in have]
    for group in loaded:
        for rule in group.get("rules", []):
            if rule.get("health") == "err" or rule.get("lastError"):
                problems.append(f"{group['name']}/{rule.get('name')}: {rule.get('lastError') or 'evaluation failed'}")
    return problems


def rules(ctx: CheckContext) -> str:
    wanted = expected_rule_groups(rule_files(ctx))
    loaded = ctx.get_json("prometheus", "/api/v1/rules")["data"]["groups"]
    problems = rule_problems(wanted, loaded)
    if problems:
        raise Failed("; ".join(problems))
    count = sum(len(g.get("rules", [])) for g in loaded)
    return f"{len(loaded)} rule groups loaded ({count} rules), no evaluation errors"


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


def grafana(ctx: CheckContext) -> str:
    auth = (ctx.platform.services.grafana.admin_user, ctx.secrets.get("GRAFANA_ADMIN_PASSWORD", ""))
    found = ctx.get_json("grafana", "/api/datasources", auth=auth)
    prometheus = [d for d in found if d.get("type") == "prometheus"]
    if not prometheus:
        raise Failed(f"no Prometheus datasource ({len(found)} datasources provisioned)")
    uid = prometheus[0].get("uid")
    health = ctx.get_json("grafana", f"/api/datasources/uid/{uid}/health", auth=auth)
    if str(health.get("status", "")).upper() != "OK":
        raise Failed(f"datasource {uid}: {health.get('message') or health.get('status')}")
    return f"datasource {prometheus[0].get('name')} ({uid}) provisioned and answering"


REMEDY_TARGETS = (
    "`mindscape status` shows which service is down; `mindscape up` starts it; an application target: "
    "check that it serves metrics where monitoring.targets says"
)
PROMETHEUS_GATES = (
    Gate("monitoring.targets", targets, REMEDY_TARGETS, timeout=RESCRAPE_MAX_S + 10),
    Gate(
        "monitoring.rules",
        rules,
        "`mindscape render --check`, then `mindscape up prometheus`; `mindscape logs prometheus` names the bad rule",
    ),
)
GRAFANA_GATES = (
    Gate(
        "monitoring.grafana",
        grafana,
        "`mindscape render --check`, then `mindscape up grafana`; `mindscape logs grafana` names the problem",
    ),
)
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
