"""`kubernetes:` in platform.yaml: how `mindscape render --target kubernetes` and
`mindscape up --target kubernetes` shape the platform for a cluster.

One top-level section rather than keys under each service: what it holds is about the cluster
(namespace, where secrets come from, the Prometheus Operator, the ops image), the Docker path
never reads it, and its presence is what turns the Kubernetes files on, so a fresh clone's
`render --check` knows to check them too. Per-service values (resources, storage) are maps
keyed by service name, checked against the registry."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from mindscape_ops import __version__
from mindscape_ops.services.registry import SERVICES
from mindscape_ops.settings.base import HttpUrl, ImageRef, Strict, check_pattern
from mindscape_ops.settings.types import Name

ServiceName = Literal[tuple(service.name for service in SERVICES)]  # type: ignore[valid-type]
DataService = Literal[tuple(s.name for s in SERVICES if s.kubernetes.workload == "StatefulSet")]  # type: ignore[valid-type]
Environment = Literal["development", "staging", "production"]

Quantity = Annotated[
    str,
    check_pattern(re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"), "a Kubernetes quantity", "250m or 512Mi"),
]
DnsName = Annotated[
    str,
    check_pattern(re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "a Kubernetes name (DNS label)", "shop-prod"),
]
LabelValue = Annotated[
    str, check_pattern(re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$"), "a label value", "true")
]
LabelKey = Annotated[
    str,
    check_pattern(
        re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"), "a label key", "team"
    ),
]


class Amounts(Strict):
    cpu: Quantity
    memory: Quantity


class Resources(Strict):
    """Requests and limits of one service's container (default: its module's)."""

    requests: Amounts
    limits: Amounts


class Storage(Strict):
    """The PersistentVolumeClaim of a StatefulSet's data."""

    size: Quantity = "10Gi"
    storage_class: DnsName | None = None  # not set: the cluster's default StorageClass


class Secrets(Strict):
    """Where the platform's passwords come from in the cluster. Never from a rendered file:
    `existing` (the default) refers to a Secret made by hand or by your secrets tooling, so a
    clean clone builds with `kustomize build`; `external` renders an ExternalSecret (External
    Secrets Operator) for that Secret; `generate` writes them (from .mindscape/) to
    deploy/kubernetes/base/secrets.env and secret-files/, git-ignored, read by a
    secretGenerator: only where those files are (the machine that ran `render`)."""

    source: Literal["generate", "existing", "external"] = "existing"
    name: DnsName | None = None  # the Secret's name; default <project>-secrets
    store: DnsName = "default"  # external: the SecretStore (or ClusterSecretStore) to read from
    store_kind: Literal["SecretStore", "ClusterSecretStore"] = "ClusterSecretStore"
    key_prefix: Annotated[str, check_pattern(re.compile(r"^[A-Za-z0-9._/-]{0,200}$"), "a key prefix", "shop/")] = ""
    refresh: Annotated[str, check_pattern(re.compile(r"^[0-9]+[smh]$"), "a refresh interval", "1h")] = "1h"


class NetworkPolicies(Strict):
    """Default deny, then only the platform's edges. The application's pods (in any namespace)
    reach the databases, cache and pooler when they carry these labels."""

    enabled: bool = True
    client_labels: dict[LabelKey, LabelValue] = Field(default_factory=lambda: {"mindscape.io/client": "true"})


class ClusterDns(Strict):
    """The cluster's DNS, which the gateway asks at request time (nginx's `resolver`): a name
    the pod resolves when nginx starts (kube-dns is CoreDNS' Service too), or its address."""

    resolver: Annotated[
        str, check_pattern(re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$"), "a DNS server", "10.96.0.10")
    ] = "kube-dns.kube-system.svc.cluster.local"
    cluster_domain: Annotated[
        str, check_pattern(re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"), "a domain", "cluster.local")
    ] = "cluster.local"


class Kubernetes(Strict):
    namespace: DnsName | None = None  # default <project>; each overlay appends -<environment>
    storage: dict[DataService, Storage] = {}
    resources: dict[ServiceName, Resources] = {}
    # per environment, Deployment replicas (default: 2 in production for the public service, the
    # gateway; else 1)
    replicas: dict[Environment, dict[ServiceName, Annotated[int, Field(ge=0, le=100)]]] = Field(
        default_factory=lambda: {"production": {s.name: 2 for s in SERVICES if s.kubernetes.public}}
    )
    secrets: Secrets = Secrets()
    prometheus_operator: bool = False  # ServiceMonitors and a PrometheusRule instead of our Prometheus
    # extra labels on the ServiceMonitors and the PrometheusRule, for the operator's
    # serviceMonitorSelector/ruleSelector (kube-prometheus-stack selects `release: <its release>`)
    monitoring_labels: dict[LabelKey, LabelValue] = {}
    # the application's Service, where the gateway proxies in the cluster (a bare name is the
    # Service in the overlay's namespace)
    upstream: HttpUrl = "http://app:8000"
    dns: ClusterDns = ClusterDns()
    # the image of the migrate and check Jobs and the backup CronJob: mindscape with this
    # project (platform.yaml, migrations) in /project
    ops_image: ImageRef = f"mindscape:{__version__}"
    network_policies: NetworkPolicies = NetworkPolicies()
    field_manager: Name = "mindscape"  # server-side apply's field manager (`up --target kubernetes`)

    def storage_for(self, service: str) -> Storage:
        return self.storage.get(service, Storage())


__all__ = ["Kubernetes", "Resources", "Secrets", "Storage"]


def image_problems(platform) -> list[tuple[tuple[str | int, ...], str]]:
    """With `kubernetes:`: every image pinned (a tag other than latest, or a digest); a cluster
    pulls an unpinned one anew on each node, so two pods may run two versions."""
    if platform.kubernetes is None:
        return []
    problems = []
    for name, service in platform.services.enabled().items():
        image = service.image
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and tag in ("", "latest"):
            problems.append(
                (
                    ("services", name, "image"),
                    f"{image!r} is not pinned; on Kubernetes give it a version tag or a digest",
                )
            )
    return problems
