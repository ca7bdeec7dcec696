"""Alertmanager: routes Prometheus' alerts to the receivers in `monitoring.receivers`. Their
secrets (webhook URLs, keys) reach it as files under .mindscape/alertmanager, never in a
rendered file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mindscape_ops.services import alertmanager_gates
from mindscape_ops.services.contract import Alert, AlertGroup, DashboardRow, HttpProbe, Inputs, Panel
from mindscape_ops.services.definition import Artifact, KubeShape, Metrics, Problem, ServiceDef, deploy, url_port
from mindscape_ops.services.panels import RATE, SEL, query, timeseries
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


class Alertmanager(Service):
    image: ImageRef = "prom/alertmanager:v0.27.0"
    port: PortSpec = 9093


RECEIVER_SECRETS = ".mindscape/alertmanager"


def container(platform: Platform) -> Container:
    return Container(
        container_port=9093,
        command=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
        volume_target="/alertmanager",
        mounts=(
            Mount(f"{platform.paths.deploy}/alertmanager", "/etc/alertmanager"),
            Mount(RECEIVER_SECRETS, "/etc/alertmanager-secrets"),
        ),
        healthcheck=wget_healthcheck(9093, "/-/ready"),
        reach_host=reaches_host(platform),
    )


def reaches_host(platform: Platform) -> bool:
    """Pure: whether a receiver, the Watchdog or the SMTP relay is on host.docker.internal, which
    resolves in the container only with the host-gateway entry (Linux engines have no default)."""
    monitoring = platform.monitoring
    addresses = [r.url for r in monitoring.receivers] + [monitoring.watchdog.url]
    addresses.append(monitoring.smtp.host if monitoring.smtp else None)
    return any(a is not None and "host.docker.internal" in str(a) for a in addresses)


def secret_sources(platform: Platform) -> list[tuple[str, str | None, str | None]]:
    """Pure: each secret Alertmanager reads from a file: (file name, variable, host file)."""
    monitoring = platform.monitoring
    found = [(r.name, r.secret_env, r.secret_file) for r in monitoring.receivers if r.has_secret]
    if monitoring.smtp and (monitoring.smtp.password_env or monitoring.smtp.password_file):
        found.append(("_smtp", monitoring.smtp.password_env, monitoring.smtp.password_file))
    if monitoring.watchdog.enabled and monitoring.watchdog.has_secret:
        found.append(("_watchdog", monitoring.watchdog.secret_env, monitoring.watchdog.secret_file))
    return found


def inputs(platform: Platform) -> Inputs:
    """Pure: the variables and files its receivers' secrets come from."""
    sources = secret_sources(platform)
    return Inputs(tuple(env for _, env, _ in sources if env), tuple(path for _, _, path in sources if path))


def alerting_warnings(platform: Platform) -> list[str]:
    """Pure: what `render`, `up` and `init` say loudly about where alerts go."""
    monitoring, enabled = platform.monitoring, platform.services.enabled()
    if "prometheus" in enabled and "alertmanager" not in enabled:
        return ["alerts reach nobody: Prometheus evaluates alert rules but services.alertmanager is not enabled"]
    if "alertmanager" not in enabled:
        return []
    warnings = []
    if not monitoring.receivers:
        warnings.append(
            "alerts reach nobody: no receiver is set (monitoring.receivers: webhook, slack, email or pagerduty)"
        )
    uncovered = [
        severity
        for severity in ("critical", "warning")
        if monitoring.receivers and not any(not r.severities or severity in r.severities for r in monitoring.receivers)
    ]
    if uncovered:
        warnings.append(
            f"alerts reach nobody: no receiver takes severity {' or '.join(uncovered)} "
            "(add it to a receiver's severities, or leave one receiver's severities empty)"
        )
    production = platform.environment == "production"
    if production and monitoring.watchdog.enabled and not monitoring.watchdog.url:
        warnings.append(
            "monitoring.watchdog.url is not set: nothing outside the platform notices when alerting itself stops"
        )
    return warnings


def production_problems(platform: Platform) -> list[tuple[tuple[str | int, ...], str]]:
    """Pure: with `environment: production`, alerts that reach nobody make platform.yaml
    invalid (`render`, `validate`, `check` exit 2), unless `monitoring.receivers_optional: true`
    says so on purpose. Elsewhere `alerting_warnings` says it as a warning."""
    if platform.environment != "production" or platform.monitoring.receivers_optional:
        return []
    fix = (
        "in production add a receiver under monitoring.receivers (and monitoring.watchdog.url), "
        "or set monitoring.receivers_optional: true to run without one on purpose"
    )
    return [(("monitoring", "receivers"), f"{warning}; {fix}") for warning in alerting_warnings(platform)]


def validate(platform: Platform) -> list[Problem]:
    """Pure: rules about Alertmanager whether or not it is enabled. Receivers need it; a webhook
    with no `url` reads its (secret) URL from a file, Alertmanager's url_file, which 0.26 added:
    an image tag naming an older version is refused now, not at start."""
    found: list[Problem] = []
    if platform.monitoring.receivers and "alertmanager" not in platform.services.enabled():
        found.append((("monitoring", "receivers"), "alerts need services.alertmanager; add it to services"))
    image = platform.services.alertmanager.image if platform.services.alertmanager else ""
    tag = re.search(r":v?(\d+)\.(\d+)[^/:]*$", image)
    if tag and (int(tag.group(1)), int(tag.group(2))) < (0, 26):
        found += [
            (
                ("monitoring", "receivers", index, "url"),
                f"a secret webhook URL (url_file) needs Alertmanager 0.26 or later; {image} is older: "
                "set url (the secret is then sent as a bearer token) or a newer services.alertmanager.image",
            )
            for index, receiver in enumerate(platform.monitoring.receivers)
            if receiver.kind == "webhook" and not receiver.url and receiver.has_secret
        ]
    return found


def _secret_value(project: Project, variable: str | None, path: str | None) -> tuple[str | None, str]:
    """(the value, or None when its variable is unset; how to name its source)."""
    if variable:
        return os.environ.get(variable), f"${variable}"
    where = Path(path).expanduser()  # type: ignore[arg-type]
    where = where if where.is_absolute() else project.root / where
    try:
        return where.read_text().strip(), str(path)
    except OSError as exc:
        return None, f"{path} ({exc.strerror or exc})"


def write_receiver_secrets(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """One file per Alertmanager secret, from its variable or file. An unset variable (or an
    unreadable file) keeps the value written before; with none, the file is empty
    (Alertmanager needs it to start) and sends with it fail: the user hears so now, not at
    the first incident. Returns warnings, those of `alerting_warnings` first."""
    from mindscape_ops.adapters.files import atomic_write, cannot_write

    folder = project.workspace.ensure_dir() / "alertmanager"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise cannot_write(folder, exc) from None
    warnings = alerting_warnings(project.platform)
    for name, variable, path in secret_sources(project.platform):
        target = folder / name
        value, source = _secret_value(project, variable, path)
        try:
            if value is not None or not target.exists():
                # readable by the container's unprivileged user; .mindscape/ itself is 0700
                atomic_write(target, value or "", mode=0o644)
            empty = not target.read_text().strip()
        except OSError as exc:
            raise cannot_write(target, exc) from None
        if empty:
            problem = "is empty" if value == "" else ("cannot be read" if path else "is not set")
            who = {"_smtp": "monitoring.smtp", "_watchdog": "monitoring.watchdog"}.get(name, f"receiver {name}")
            warnings.append(f"{who}: {source} {problem}; alerts to it will fail until it is")
    return warnings


# -- its alerts in the platform group (alerting itself) ----------------------------------------------


def shared_alerts(platform: Platform) -> tuple[AlertGroup, ...]:
    """The Watchdog first in the platform group (before InstanceDown's part, at rank 0), its own
    failures last (after Prometheus')."""
    watchdog = Alert(
        "Watchdog",
        "vector(1)",
        "0s",
        "info",
        "watchdog",  # its own service: no outage's alert inhibits it
        "Alerting works: this alert always fires",
        "The dead man's switch: it is sent to monitoring.watchdog every repeat_interval. When it stops "
        "arriving, Prometheus, Alertmanager or the path between them is broken.",
        (
            "Nothing to do while it fires. Silence it only to test the dead man's switch.",
            "When the switch pages that it stopped: `mindscape status`, then `mindscape logs prometheus` "
            "and `mindscape logs alertmanager`.",
        ),
    )
    own = (
        Alert(
            "AlertmanagerConfigReloadFailed",
            "alertmanager_config_last_reload_successful == 0",
            "5m",
            "warning",
            "alertmanager",
            "Alertmanager could not load its configuration",
            "The last reload of alertmanager.yml failed; Alertmanager runs on the previous one.",
            ("`mindscape logs alertmanager --tail 50` says why; `amtool check-config` checks the file.",),
        ),
        Alert(
            "AlertmanagerNotificationsFailing",
            "sum by (integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
            "15m",
            "warning",
            "alertmanager",
            "Alertmanager fails to send notifications through {{ $labels.integration }}",
            "Notifications are failing; check the receiver settings and the secret files in .mindscape/alertmanager.",
            (
                "`mindscape logs alertmanager` shows the error of each failed send.",
                "Set the receiver's variable or file again, then `mindscape up alertmanager`.",
            ),
        ),
    )
    return (
        AlertGroup("platform", (watchdog,) if platform.monitoring.watchdog.enabled else (), rank=-10),
        AlertGroup("platform", own, rank=20),
    )


# -- its row of the platform dashboard ----------------------------------------------------------


def dashboard(platform: Platform) -> tuple[DashboardRow, ...]:
    panels: list[Panel] = []
    panels.append(
        Panel(
            timeseries(
                "Notifications sent",
                "short",
                query(
                    f"sum by (integration) (rate(alertmanager_notifications_total{{{SEL}}}{RATE}))", "{{integration}}"
                ),
            ),
            width=12,
        )
    )
    panels.append(
        Panel(
            timeseries(
                "Notifications failed",
                "short",
                query(
                    f"sum by (integration) (rate(alertmanager_notifications_failed_total{{{SEL}}}{RATE}))",
                    "{{integration}}",
                ),
                threshold=0.0001,
            ),
            width=12,
        )
    )
    return (DashboardRow("Alertmanager", tuple(panels), rank=20),)


# -- on Kubernetes ------------------------------------------------------------------------------


def receiver_ports(platform: Platform) -> set[int]:
    """Where it delivers: each receiver's URL (HTTPS when it has none), a mail relay's ports."""
    ports: set[int] = set()
    for receiver in platform.monitoring.receivers:
        ports |= {url_port(receiver.url)} if getattr(receiver, "url", None) else {443}
        if receiver.kind == "email":
            ports |= {25, 465, 587}
    return ports


def receiver_hosts(platform: Platform) -> list[tuple[str, str | None]]:
    hooks = [(f"monitoring.receivers {r.name}", r.url) for r in platform.monitoring.receivers]
    hooks.append(("monitoring.watchdog.url", platform.monitoring.watchdog.url))
    smtp = [("monitoring.smtp.host", platform.monitoring.smtp.host)] if platform.monitoring.smtp else []
    return [(what, urlsplit(str(url)).hostname) for what, url in hooks if url] + smtp


SERVICE = ServiceDef(
    name="alertmanager",
    dashboard=dashboard,
    summary="alert routing to the receivers",
    settings=Alertmanager,
    container=container,
    probe=HttpProbe("/-/ready"),
    metrics=Metrics(9093),
    artifacts=(Artifact("alertmanager/alertmanager.yml.j2", deploy("alertmanager/alertmanager.yml")),),
    prepare=write_receiver_secrets,
    problems=production_problems,  # alerts that reach nobody: an error in production
    inputs=inputs,
    # each receiver's secret is a file in .mindscape/alertmanager: a key of the Secret there
    kubernetes=KubeShape(
        workload="StatefulSet",  # silences and the notification log on a PVC
        workspace_files=lambda p: {RECEIVER_SECRETS: tuple(name for name, *_ in secret_sources(p))},
        outside_ports=receiver_ports,
        outside_hosts=receiver_hosts,
    ),
    shared_alerts=shared_alerts,  # the Watchdog, its reload and sending failures (group platform)
    validate=validate,  # receivers need it; a secret webhook URL needs 0.26
    platform_gates=alertmanager_gates.GATES,  # alerts reach a receiver; Prometheus reaches it (monitoring)
)
