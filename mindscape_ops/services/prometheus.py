"""Prometheus: scrapes every service that has metrics (from the registry) and the
applications in `monitoring.targets`, and evaluates the alert rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from mindscape_ops.services.alertmanager import alerting_warnings, production_problems
from mindscape_ops.services.contract import (
    METRICS_DIR,
    Alert,
    AlertGroup,
    BackupContext,
    DashboardRow,
    Failed,
    Gate,
    GateContext,
    HttpProbe,
    Panel,
)
from mindscape_ops.services.definition import Artifact, KubeShape, Metrics, ReplacedByOperator, ServiceDef, deploy
from mindscape_ops.services.node_exporter import backup_group
from mindscape_ops.services.panels import RATE, SEL, query, stat, timeseries
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, ScrapeTarget, Service
from mindscape_ops.settings.types import Duration

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


class Prometheus(Service):
    image: ImageRef = "prom/prometheus:v2.53.0"
    port: PortSpec = 9090
    scrape_interval: Duration = Duration("15s")
    evaluation_interval: Duration = Duration("15s")
    retention: Duration = Duration("15d")
    targets: list[ScrapeTarget] = []


# Where it reads the time of each good backup (recording rules `backup create` writes) when no
# node_exporter does: a platform that backs up always has BackupTooOld.
BACKUP_TIMES = "/etc/prometheus-backups"


def reads_backup_times(platform: Platform) -> bool:
    """Pure: the platform backs up and no node_exporter reads the times for Prometheus."""
    enabled = platform.services.enabled()
    return bool(platform.backups.enabled and platform.backup_services and "node_exporter" not in enabled)


def prepare(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """Says loudly when alerts have nowhere to go; the folder of the backup times exists (empty)
    before it is mounted."""
    if reads_backup_times(project.platform):
        folder = project.root / METRICS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # read by Prometheus' unprivileged user; .mindscape/ itself is 0700
    return [] if "alertmanager" in project.platform.services.enabled() else alerting_warnings(project.platform)


def reload_backup_times(ctx: BackupContext) -> None:
    """After a good backup: Prometheus loads the new time now (a recording rule); when it does not
    run, it loads it at its start. Never fails the backup."""
    import urllib.request

    from mindscape_ops.errors import MindscapeError

    if not reads_backup_times(ctx.project.platform):
        return
    try:
        address = ctx.address("prometheus")
        request = urllib.request.Request(f"http://{address.host}:{address.port}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - its published port
            response.read()
    except (OSError, MindscapeError):
        pass


def container(platform: Platform) -> Container:
    return Container(
        container_port=9090,
        command=(
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={platform.services.prometheus.retention}",
            "--web.enable-lifecycle",
        ),
        volume_target="/prometheus",
        mounts=(
            Mount(f"{platform.paths.deploy}/prometheus", "/etc/prometheus"),
            *((Mount(METRICS_DIR, BACKUP_TIMES, live=True),) if reads_backup_times(platform) else ()),
        ),
        healthcheck=wget_healthcheck(9090, "/-/ready"),
        reach_host=True,  # applications run on the host
    )


def app_targets(platform: Platform) -> list[tuple[tuple[str | int, ...], ScrapeTarget]]:
    """Pure: the applications in its own `targets`, beside monitoring.targets, with their paths."""
    own = platform.services.prometheus
    return [(("services", "prometheus", "targets", i), t) for i, t in enumerate(own.targets)] if own else []


# -- its `mindscape check` gates (monitoring group) ------------------------------------------------

POLL_S = 0.5
RESCRAPE_MAX_S = 50.0  # the targets gate's timeout is 60 s
# Prometheus hands what it discovered to its scrapers at most every 5 s: in its first seconds
# (a `check` right after `up`) it lists no target yet, whatever its configuration says.
DISCOVERY_S = 7.0


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


def targets(ctx: GateContext) -> str:
    active = discovered(ctx)
    if any(t.get("health") == "down" for t in active):
        active = rescraped(ctx, active)
    down, unknown = down_targets(active)
    if down:
        raise Failed(f"{len(down)} of {len(active)} targets down: {'; '.join(down)}")
    if not active:
        raise Failed("Prometheus scrapes no target", "check deploy/prometheus/prometheus.yml: `mindscape render`")
    note = f" ({unknown} not scraped yet)" if unknown else ""
    return f"{len(active) - unknown} of {len(active)} targets up{note}"


def active_targets(ctx: GateContext) -> list[dict[str, Any]]:
    return ctx.get_json("prometheus", "/api/v1/targets?state=active")["data"]["activeTargets"]


def discovered(ctx: GateContext) -> list[dict[str, Any]]:
    """The active targets, once Prometheus has handed any to its scrapers (or after DISCOVERY_S:
    then none is configured)."""
    return polled(ctx, active_targets(ctx), bool, DISCOVERY_S)


def rescraped(ctx: GateContext, active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets again once each one that was down has been scraped once more (or after a
    scrape interval): right after `up`, Prometheus scraped services that were still starting."""
    first = {t.get("scrapeUrl"): t.get("lastScrape") for t in active if t.get("health") == "down"}

    def scraped_again(active: list[dict[str, Any]]) -> bool:
        return all(t.get("lastScrape") != first[t.get("scrapeUrl")] for t in active if t.get("scrapeUrl") in first)

    seconds = min(ctx.platform.services.prometheus.scrape_interval.seconds + 2, RESCRAPE_MAX_S)
    return polled(ctx, active, scraped_again, seconds)


def polled(
    ctx: GateContext, active: list[dict[str, Any]], done: Callable[[list[dict[str, Any]]], bool], seconds: float
) -> list[dict[str, Any]]:
    """The active targets, read again every POLL_S until `done` says so of them or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not done(active) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        active = active_targets(ctx)
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


def rule_files(ctx: GateContext) -> dict[str, str]:
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


def rules(ctx: GateContext) -> str:
    wanted = expected_rule_groups(rule_files(ctx))
    loaded = ctx.get_json("prometheus", "/api/v1/rules")["data"]["groups"]
    problems = rule_problems(wanted, loaded)
    if problems:
        raise Failed("; ".join(problems))
    count = sum(len(g.get("rules", [])) for g in loaded)
    return f"{len(loaded)} rule groups loaded ({count} rules), no evaluation errors"


REMEDY_TARGETS = (
    "`mindscape status` shows which service is down; `mindscape up` starts it; an application target: "
    "check that it serves metrics where monitoring.targets says"
)
GATES = (
    Gate("monitoring.targets", targets, REMEDY_TARGETS, timeout=RESCRAPE_MAX_S + 10),
    Gate(
        "monitoring.rules",
        rules,
        "`mindscape render --check`, then `mindscape up prometheus`; `mindscape logs prometheus` names the bad rule",
    ),
)

# -- its alerts in the platform group (alerting itself) ----------------------------------------------


def shared_alerts(platform: Platform) -> tuple[AlertGroup, ...]:
    """Its own failures, after every scrape job's InstanceDown (it does not alert that it is down:
    it could not)."""
    alerts = (
        Alert(
            "PrometheusConfigReloadFailed",
            "prometheus_config_last_reload_successful == 0",
            "5m",
            "warning",
            "prometheus",
            "Prometheus could not load its configuration",
            "The last reload of prometheus.yml or a rule file failed; Prometheus runs on the previous one.",
            (
                "`mindscape logs prometheus --tail 50` names the file and the line.",
                "`mindscape render --check` finds hand edits; `promtool check config` checks prometheus.yml.",
            ),
        ),
        Alert(
            "PrometheusRuleEvaluationFailing",
            "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
            "10m",
            "warning",
            "prometheus",
            "Prometheus fails to evaluate rules in {{ $labels.rule_group }}",
            "Some alert rules cannot be evaluated, so those alerts cannot fire. Check the expressions in "
            "platform.yaml monitoring.rules.",
            ("`mindscape check --only monitoring` names the failing rule and its error.",),
        ),
    )
    backups = backup_group(platform, "prometheus", "where Prometheus reads it (.mindscape/metrics)")
    return (AlertGroup("platform", alerts, rank=10), *(backups if reads_backup_times(platform) else ()))


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "Samples ingested",
                "short",
                query(f"rate(prometheus_tsdb_head_samples_appended_total{{{SEL}}}{RATE})", "{{instance}}"),
            )
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Rule evaluation failures",
                "short",
                query(
                    f"sum by (rule_group) (increase(prometheus_rule_evaluation_failures_total{{{SEL}}}{RATE}))",
                    "{{rule_group}}",
                ),
            )
        )
    )
    panels.append(
        Panel(
            stat(
                "Config loaded",
                f"prometheus_config_last_reload_successful{{{SEL}}}",
                "{{instance}}",
                "Whether the last reload of prometheus.yml and its rules worked.",
                [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "FAILED", "color": "red", "index": 0},
                            "1": {"text": "OK", "color": "green", "index": 1},
                        },
                    }
                ],
                good_low=False,
            )
        )
    )
    return (DashboardRow("Prometheus", tuple(panels), rank=10),)


# -- on Kubernetes ------------------------------------------------------------------------------

CONFIG = Artifact("prometheus/prometheus.yml.j2", deploy("prometheus/prometheus.yml"))


def scrape_interval(platform: Platform) -> str:
    prometheus = platform.services.prometheus
    return str(prometheus.scrape_interval) if prometheus else "30s"


def application_ports(platform: Platform) -> set[int]:
    """The ports of the application targets it scrapes (`host:port`), wherever they are."""
    return {int(address.rsplit(":", 1)[1]) for t in platform.scrape_targets for address in t.targets}


def application_hosts(platform: Platform) -> list[tuple[str, str | None]]:
    return [
        (f"scrape target {target.name}", address.rsplit(":", 1)[0])
        for target in platform.scrape_targets
        for address in target.targets
    ]


KUBERNETES = KubeShape(
    workload="StatefulSet",  # its TSDB on a PVC
    cpu=("100m", "1"),
    memory=("256Mi", "1Gi"),
    talks_to=lambda platform: ("alertmanager",),  # sends it the alerts, when it runs
    # with the operator: ServiceMonitors and a PrometheusRule instead; its pods carry this label
    replaced_by_operator=ReplacedByOperator(
        interval=scrape_interval, rules="prometheus/rules/", pod_labels={"app.kubernetes.io/name": "prometheus"}
    ),
    scrape_config=CONFIG,
    outside_ports=application_ports,
    outside_hosts=application_hosts,
)

SERVICE = ServiceDef(
    name="prometheus",
    dashboard=dashboard,
    summary="metrics and alert rules",
    settings=Prometheus,
    container=container,
    probe=HttpProbe("/-/ready"),
    metrics=Metrics(9090),
    artifacts=(
        CONFIG,
        Artifact("prometheus/rules/services.yml.j2", deploy("prometheus/rules/services.yml")),
        Artifact(
            "prometheus/rules/applications.yml.j2",
            deploy("prometheus/rules/applications.yml"),
            lambda p: bool(p.scrape_targets),
        ),
        Artifact(
            "prometheus/rules/custom.yml.j2", deploy("prometheus/rules/custom.yml"), lambda p: bool(p.monitoring.rules)
        ),
        # the runbook every alert's runbook_url points at
        Artifact("runbooks/alerts.md.j2", lambda p: f"{p.paths.runbooks}/alerts.md"),
    ),
    prepare=prepare,  # says loudly when alerts have nowhere to go
    # without Alertmanager its rules reach nobody: an error in production (Alertmanager says it otherwise)
    problems=lambda p: [] if "alertmanager" in p.services.enabled() else production_problems(p),
    gates=GATES,  # its `mindscape check` gates
    kubernetes=KUBERNETES,
    app_targets=app_targets,
    shared_alerts=shared_alerts,  # its reload and rule evaluation failures (group platform)
    backup_recorded=reload_backup_times,  # the times are recording rules where no node_exporter reads them
    alert_when_down=False,  # the one that alerts cannot say it is down: the Watchdog's silence does
)
