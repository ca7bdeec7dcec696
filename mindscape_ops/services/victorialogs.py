"""VictoriaLogs: the log store. Every other container's output reaches it through Docker's own
splunk log driver (HTTP Event Collector JSON, posted by the engine to a second listener
published on the host), so no agent runs; `docker logs` keeps working through the engine's
dual-logging cache. A JSON line (the gateway's access log) arrives as fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Alert, AlertGroup, HttpProbe, LogFields
from mindscape_ops.services.definition import Metrics, Problem, ServiceDef
from mindscape_ops.services.spec import LOG_OPTIONS, Container, wget_healthcheck
from mindscape_ops.services.victorialogs_gates import LOGS_GATES
from mindscape_ops.settings.base import ImageRef, PortSpec, Service
from mindscape_ops.settings.types import Duration, Size

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

HTTP, INGEST = 9428, 9429  # query API, UI and metrics; the log driver's endpoint
DATA = "/victoria-logs-data"

# What the splunk driver sends, as VictoriaLogs flattens it: the container's labels, its name
# (the driver's tag) and the line, parsed when it is JSON (then its keys are event.line.<key>).
PROJECT_FIELD = "event.attrs.io.mindscape.project"
SERVICE_FIELD = "event.attrs.io.mindscape.service"
CONTAINER_FIELD = "event.tag"
LINE_PREFIX = "event.line."
STREAM_FIELDS = (PROJECT_FIELD, SERVICE_FIELD, CONTAINER_FIELD)
# The message: the line as written; for a JSON access-log line, its URI.
MESSAGE_FIELDS = ("event.line", "event.line.uri")


class VictoriaLogs(Service):
    """The log store: LogsQL queries and the UI on `port`, container logs in on `ingest_port`."""

    image: ImageRef = "victoriametrics/victoria-logs:v1.52.1"
    port: PortSpec = HTTP
    # Where the engine delivers every container's output (on `bind`): a number, or `auto` (picked
    # by `up` and kept in state.json); null: containers keep Docker's json-file driver only and
    # nothing is shipped.
    ingest_port: PortSpec | None = INGEST
    retention: Duration = Duration("7d")  # at least 1d
    max_disk: Size = Size("1gb")  # older days are dropped beyond this


def container(platform: Platform) -> Container:
    vl = platform.services.victorialogs
    command = [
        f"-storageDataPath={DATA}",
        f"-retentionPeriod={int(vl.retention.seconds // 3600)}h",
        f"-retention.maxDiskSpaceUsageBytes={vl.max_disk.bytes}",
        f"-httpListenAddr=:{HTTP}",
        f"-splunk.streamFields={','.join(STREAM_FIELDS)}",
        f"-splunk.msgField={','.join(MESSAGE_FIELDS)}",
    ]
    ingest = ingest_host_port(platform)
    if ingest is not None:
        command.append(f"-httpListenAddr=:{INGEST}")
    return Container(
        container_port=HTTP,
        extra_ports={INGEST: ingest} if ingest is not None else {},
        command=tuple(command),
        volume_target=DATA,
        healthcheck=wget_healthcheck(HTTP, "/health"),
    )


def ingest_host_port(platform: Platform) -> int | None:
    """The host port the engine posts to (None: nothing is shipped). An `auto` one is resolved
    from state before containers are made (provision/endpoints.py `platform_as_run`); left
    unresolved (the compose export, whose log driver must name a fixed URL, or a plan before
    the first `up`), it stands for the default."""
    port = platform.services.victorialogs.ingest_port
    return INGEST if port == "auto" else port


def host_of(bind: str) -> str:
    return "127.0.0.1" if bind == "0.0.0.0" else bind


def log_sink(platform: Platform, service: str) -> tuple[str, dict[str, str]] | None:
    """The log driver and options of another service's container: Docker's splunk driver,
    posting from the engine to the ingest port. Lines are buffered, never block the
    container (non-blocking mode), and are kept locally for `docker logs` (the cache)."""
    vl = platform.services.victorialogs
    ingest = ingest_host_port(platform)
    if ingest is None:
        return None
    return "splunk", {
        "splunk-url": f"http://{host_of(vl.bind)}:{ingest}",
        "splunk-token": "mindscape",  # VictoriaLogs checks none; the driver insists on one
        "splunk-format": "json",
        "splunk-verify-connection": "false",  # the store may start later or be restarting
        "tag": platform.container_name(service),
        "labels": "io.mindscape.project,io.mindscape.service",
        "mode": "non-blocking",
        "max-buffer-size": "4m",
        "cache-max-size": LOG_OPTIONS["max-size"],
        "cache-max-file": LOG_OPTIONS["max-file"],
    }


def problems(platform: Platform) -> list[Problem]:
    vl = platform.services.victorialogs
    at = lambda key: ("services", "victorialogs", key)  # noqa: E731
    found: list[Problem] = []
    if vl.retention.seconds < 86400:
        found.append((at("retention"), f"{vl.retention} is under VictoriaLogs' minimum of 1d"))
    if vl.max_disk.bytes < 1024**2:
        found.append((at("max_disk"), f"{vl.max_disk} is too small; use at least 1mb"))
    for name, service in platform.services.enabled().items():
        if isinstance(vl.ingest_port, int) and service.port == vl.ingest_port:
            found.append((at("ingest_port"), f"port {vl.ingest_port} is already services.{name}.port"))
    return found


# -- its alerts (rendered into prometheus/rules/services.yml and runbooks/alerts.md) ---------------


def alerts(platform: Platform) -> AlertGroup:
    """The log store (services.victorialogs): down, or up and storing nothing from the containers."""
    return AlertGroup(
        "logs",
        (
            Alert(
                "LogStoreDown",
                'up{job="victorialogs"} == 0',
                "1m",
                "critical",
                "victorialogs",
                "The log store is down",
                "Prometheus has not reached VictoriaLogs at {{ $labels.instance }} for 1 minute: container logs "
                "are buffered by the engine for a while, then dropped; `mindscape logs` falls back to the "
                "engine's logs.",
                (
                    "`mindscape status` shows whether victorialogs runs; `mindscape up victorialogs` starts it.",
                    "`mindscape logs victorialogs --tail 100` says why it stopped (a full disk: lower "
                    "services.victorialogs.retention or raise its disk limit).",
                ),
            ),
            Alert(
                "LogIngestionStopped",
                '(sum(increase(vl_rows_ingested_total{type="splunk"}[30m])) or vector(0)) == 0 '
                'and on() (up{job="victorialogs"} == 1)',
                "5m",
                "warning",
                "victorialogs",
                "No container log line reached the log store for 30 minutes",
                "VictoriaLogs is up but stored no line from the containers' log driver. A platform that is "
                "really that quiet also fires this; `mindscape check --only logs` names a container whose lines "
                "do not arrive.",
                (
                    "`mindscape check --only logs` looks for each container's newest line in the store and names "
                    "those missing (with nothing to compare, it writes a marker line and looks for it).",
                    "Containers made before the store was enabled still log to json-file: `mindscape up` "
                    "recreates them with the shipping log driver.",
                ),
            ),
        ),
        rank=50,  # its place in services.yml and alerts.md
    )


SERVICE = ServiceDef(
    name="victorialogs",
    alerts=alerts,
    summary="log store: every container's output, queried with LogsQL",
    settings=VictoriaLogs,
    container=container,
    probe=HttpProbe("/health"),
    metrics=Metrics(HTTP),
    problems=problems,
    log_sink=log_sink,
    gates=LOGS_GATES,
    log_fields=LogFields(PROJECT_FIELD, SERVICE_FIELD, CONTAINER_FIELD, LINE_PREFIX, "/insert/loki/api/v1/push"),
    auto_ports={"ingest_port": INGEST},
)
