"""What a service is, in one place: `ServiceDef`. Each module under services/ defines one, and
the registry lists them in start order. Everything that differs between services is a field
or a hook here; the rest of the code walks the registry and never names a service."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlsplit

from mindscape_ops.services.contract import (
    Address,
    AlertGroup,
    BackupContext,
    BackupHooks,
    Credentials,
    DashboardRow,
    Gate,
    Inputs,
    LogFields,
    Probe,
    Wait,
)
from mindscape_ops.services.spec import Container

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.settings.base import ScrapeTarget, Service
    from mindscape_ops.workspace.project import Project

Problem = tuple[tuple[str | int, ...], str]  # (dotted path in platform.yaml, message)


@dataclass(frozen=True)
class Artifact:
    """A file rendered from a template: always, or when `when` holds."""

    template: str  # under templates/
    output: Callable[[Platform], str]  # path relative to the project root
    when: Callable[[Platform], bool] = lambda platform: True


def deploy(rel: str) -> Callable[[Platform], str]:
    return lambda platform: f"{platform.paths.deploy}/{rel}"


@dataclass(frozen=True)
class Metrics:
    """Where Prometheus scrapes a service on the platform network (`<service>:<port>`)."""

    port: int
    path: str = "/metrics"


def url_port(url: str) -> int:
    """The TCP port an http(s) URL reaches: its own, else the scheme's."""
    parts = urlsplit(str(url))
    return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class ReplacedByOperator:
    """A service the Prometheus Operator stands in for on a cluster that has it
    (kubernetes.prometheus_operator): the service is not rendered; a ServiceMonitor per service
    with metrics and one PrometheusRule of its rendered rule files take its place, and the
    operator's own pods may scrape every metrics port."""

    interval: Callable[[Platform], str]  # each ServiceMonitor's scrape interval
    rules: str  # the folder under paths.deploy of its rendered rule files (`.../rules/`)
    pod_labels: Mapping[str, str]  # what the operator's pods carry (the NetworkPolicies select them)


@dataclass(frozen=True)
class OpsDatabase:
    """The platform's database as the ops Jobs reach it (the migrate Job, the backup CronJob),
    by database.url_env: Kubernetes puts the password in from the Secret when the pod starts,
    so the rendered URL holds only `$(<password>)`."""

    password: str  # its key in the Secret, and the variable the URL expands
    url: Callable[[Platform, str], str]  # (platform, "host:port" of its Service) -> the URL


@dataclass(frozen=True)
class InitStep:
    """A command its pod runs to completion before the service's container starts (what `up`'s
    before_start hook does on Docker: a database and role, migrations); the compose export runs
    it as a one-off service the service waits for. `image` None: the service's own image, with
    its container's mounts (and user); else that image (Platform -> image) with none.
    `environment`: plain variables; `secrets`: variable -> key of secrets.env."""

    name: str
    args: Callable[[Platform], tuple[str, ...]]
    image: Callable[[Platform], str] | None = None
    environment: Callable[[Platform], dict[str, str]] = lambda platform: {}
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodCommand:
    """A command run inside the service's own pod (pod 0 of its StatefulSet), where its data is:
    a Job of the ops image execs it through the Kubernetes API, with a ServiceAccount allowed
    pods/exec on that one pod only. With a schedule, a CronJob; without, a one-off Job at each
    rollout (named after its content, so a new ops image or command runs it again): the command
    must then be idempotent and wait for the service itself."""

    name: str  # the CronJob's name, or the Job's before its digest (a DNS label)
    schedule: str | None  # cron, UTC; None: once, at rollout
    argv: tuple[str, ...]  # run in the service's container, as its user


@dataclass(frozen=True)
class KubeShape:
    """How a service runs on Kubernetes, beyond its ContainerSpec and probe (which
    render/kubernetes/ reads too): the workload, the image's unprivileged uid (Kubernetes needs a
    number), the paths it writes over a read-only root filesystem, default resources, the
    network edges its NetworkPolicy allows, and what the renderer would otherwise decide by its
    name: the Prometheus Operator standing in for it, the scrape config it renders, the ports and
    hosts it reaches outside the platform, its notes for a cluster, the ops Jobs' database."""

    workload: Literal["Deployment", "StatefulSet", "DaemonSet"] = "Deployment"
    run_as: int = 65534  # nobody: the uid of most exporters' and Prometheus' images
    read_only_root: bool = True
    writable: tuple[str, ...] = ("/tmp",)  # emptyDirs over the read-only root
    cpu: tuple[str, str] = ("50m", "500m")  # request, limit (kubernetes.resources overrides)
    memory: tuple[str, str] = ("64Mi", "256Mi")
    clients: bool = False  # the application's pods may connect (a database, a cache)
    public: bool = False  # anyone may connect (the gateway)
    # UDP ports it listens on inside the platform, and the services that send to them
    udp_ports: tuple[int, ...] = ()
    udp_senders: tuple[str, ...] = ()
    # platform services it connects to besides depends_on (e.g. the exporter via pgbouncer)
    talks_to: Callable[[Platform], tuple[str, ...]] = lambda platform: ()
    # (service, port) it reaches besides a service's main port (an admin API)
    talks_to_ports: Callable[[Platform], tuple[tuple[str, int], ...]] = lambda platform: ()
    # the files in each folder of .mindscape/ it mounts (they become keys of the Secret)
    workspace_files: Callable[[Platform], dict[str, tuple[str, ...]]] = lambda platform: {}
    # the Prometheus Operator runs its part instead, with kubernetes.prometheus_operator
    replaced_by_operator: ReplacedByOperator | None = None
    # it scrapes every service's metrics port (the NetworkPolicies let it), by this config file,
    # rendered again for the cluster with each target at its Service's name
    scrape_config: Artifact | None = None
    # TCP ports it reaches outside the platform, at any address (an upstream, a receiver)
    outside_ports: Callable[[Platform], set[int]] = lambda platform: set()
    # (setting, host) of each address outside the platform its settings name: a host only Docker
    # resolves (host.docker.internal) is warned about, since a cluster does not
    outside_hosts: Callable[[Platform], list[tuple[str, str | None]]] = lambda platform: []
    # what else a user should know about it on a cluster (said by render and `up`)
    cluster_notes: Callable[[Platform], list[str]] = lambda platform: []
    # the platform's database: the ops Jobs (migrate, backup) connect to it
    ops_database: OpsDatabase | None = None
    # env var -> key of secrets.env, by Secret reference: what a pod reads instead of the
    # container's owner_only mounts (and the variables that name them)
    secret_env: Mapping[str, str] = field(default_factory=dict)
    # commands its pod runs first, in order (initContainers; one-off services in the compose export)
    init_steps: tuple[InitStep, ...] = ()
    # folders of .mindscape/ it mounts whose files hold no secret, as the cluster gets them:
    # mount source -> {file name: text}, a ConfigMap; a subfolder of one that workspace_files
    # names comes from the Secret, mounted inside it
    config_folders: Callable[[Platform], dict[str, dict[str, str]]] = lambda platform: {}
    # commands run in its pod (a StatefulSet's), by CronJobs or a Job at rollout (PodCommand)
    pod_commands: Callable[[Platform], tuple[PodCommand, ...]] = lambda platform: ()


class UpContext(Protocol):
    """What a service's start hooks may use during `up`."""

    project: Project
    secrets: Mapping[str, str]

    def address(self, service: str) -> Address: ...
    def credentials(self, service: str) -> Credentials: ...
    def waiting(self, service: str) -> Wait: ...
    def event(self, service: str, state: str, detail: str = "") -> None: ...
    def migrate(self) -> int: ...  # apply pending migrations (wired by the CLI); how many ran


@dataclass(frozen=True)
class ServiceDef:
    name: str  # its key under `services:`, and part of its container's name
    settings: type[Service]  # its section of platform.yaml; defaults name the official image
    container: Callable[[Platform], Container]  # what is particular to its ContainerSpec
    probe: Probe  # how `up` knows it is really ready (services/contract.py)
    summary: str = ""  # one line: what it is for
    depends_on: tuple[str, ...] = ()  # must be enabled too; started (and ready) first
    secrets: tuple[str, ...] = ()  # keys generated into .mindscape/secrets.env
    metrics: Metrics | None = None  # scraped by Prometheus when both run
    artifacts: tuple[Artifact, ...] = ()  # the files it renders (when it is enabled)
    holds_data: bool = False  # its volume holds data worth backing up (backups.services)
    credentials: Callable[[Platform, Mapping[str, str]], Credentials] | None = None  # for its probe
    # Files it needs under .mindscape/ before containers start (from secrets, the environment);
    # returns warnings for the user.
    prepare: Callable[[Project, Mapping[str, str]], list[str]] | None = None
    # The variables and files outside platform.yaml its `prepare` reads (the no-op `up` watches them)
    inputs: Callable[[Platform], Inputs] | None = None
    before_start: Callable[[UpContext], None] | None = None  # just before its container starts
    after_ready: Callable[[UpContext], None] | None = None  # once its probe passes
    problems: Callable[[Platform], list[Problem]] | None = None  # rules across the platform about it
    # A service that receives every other container's output: the log driver and its options
    # for the container of the service named (None: that container keeps json-file).
    log_sink: Callable[[Platform, str], tuple[str, dict[str, str]] | None] | None = None
    # How `mindscape backup` dumps and restores it (loaded when used: backups need heavy clients)
    backup: Callable[[], BackupHooks] | None = None
    gates: tuple[Gate, ...] = ()  # its `mindscape check` quality gates, whatever their group
    alerts: Callable[[Platform], AlertGroup] | None = None  # its alert rules, when it is enabled
    dashboard: Callable[[Platform], tuple[DashboardRow, ...]] | None = None  # its rows on Grafana's dashboard
    kubernetes: KubeShape = KubeShape()  # its shape on Kubernetes (`render --target kubernetes`)
    # The platform's database: `migrate`, `check` and the Postgres backups connect to it when
    # $DATABASE_URL (database.url_env) is not set; one service of the registry is it.
    platform_database: bool = False
    # Gates about it that run whether or not it is enabled (they skip themselves when they do
    # not apply): alerts that reach nobody without Alertmanager. After the services' own gates.
    platform_gates: tuple[Gate, ...] = ()
    # Rules about it checked whether or not it is enabled (`problems` runs only when it is):
    # what needs it, what its image allows.
    validate: Callable[[Platform], list[Problem]] | None = None
    # Application targets its section of platform.yaml adds to monitoring.targets, each with
    # its path there (Prometheus' own `targets`): scraped and named like them.
    app_targets: Callable[[Platform], list[tuple[tuple[str | int, ...], ScrapeTarget]]] | None = None
    # Its alerts in the groups no one service owns, when it is enabled: "platform" (alerting
    # itself; every scrape job's InstanceDown is its part at rank 0) and "backups". The parts of
    # a group come in rank order; "platform" is the first group, the others follow the
    # services' own groups.
    shared_alerts: Callable[[Platform], tuple[AlertGroup, ...]] | None = None
    alert_when_down: bool = True  # InstanceDown when Prometheus cannot scrape it (not Prometheus itself)
    # After `backup create` noted a good backup in METRICS_DIR (BackupTooOld's source): what it
    # does about it when enabled (Prometheus reloads the times it reads as recording rules)
    backup_recorded: Callable[[BackupContext], None] | None = None
    # A log store: the fields its rows carry what the log driver sends under (`logs` queries them)
    log_fields: LogFields | None = None
    # Port settings beyond `port` that may be `auto`: setting -> the container port it publishes.
    # `up` picks a free one and keeps it in state.json like `port: auto` (under "<service>.<setting>").
    auto_ports: Mapping[str, int] = field(default_factory=dict)

    def credentials_for(self, platform: Platform, secrets: Mapping[str, str]) -> Credentials:
        """Who its probe logs in as: its `credentials` hook, or nobody for a service without one."""
        return self.credentials(platform, secrets) if self.credentials else Credentials()
