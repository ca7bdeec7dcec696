"""Where the rendered files run: the platform's Docker network (`up`, the compose export) or a
Kubernetes namespace. A config that names another service (the gateway's upstream, a log
target) names it the way that place resolves it, and with the DNS server that serves it there,
so that a process can look the name up when it needs it instead of refusing to start."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

DOCKER_DNS = "127.0.0.11"  # the embedded DNS of a user-defined Docker network
# Names no DNS server serves: /etc/hosts has them (Docker writes host.docker.internal there
# through extra_hosts), so a process reads them when it starts.
HOSTS_FILE_NAMES = ("localhost", "host.docker.internal")


@dataclass(frozen=True)
class Site:
    target: str  # "docker" or "kubernetes"
    resolver: str  # the DNS server a process there asks (an address, or a name the system resolves)
    namespace: str | None = None  # kubernetes: the overlay's namespace (None in the base)
    cluster_domain: str = "cluster.local"
    app_url: str | None = None  # kubernetes: the application's Service

    def host(self, service: str) -> str:
        """A platform service's name there: the container's name on the Docker network; the
        Service's on a cluster, qualified when the namespace is known (a resolver asked
        directly does not apply the pod's search domains)."""
        if self.target == "docker":
            return service
        return self.qualified(service.replace("_", "-"))

    def qualified(self, name: str) -> str:
        if self.target == "docker" or "." in name or not self.namespace:
            return name
        return f"{name}.{self.namespace}.svc.{self.cluster_domain}"

    def read_at_start(self, host: str) -> bool:
        """An address, or a name from /etc/hosts: nothing a DNS server could answer."""
        if host in HOSTS_FILE_NAMES:
            return True
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return True

    def upstream(self, url: str) -> str:
        """The application's URL there: on a cluster, its Service (kubernetes.upstream), never the
        Docker host; a bare Service name qualified with the namespace."""
        if self.target == "docker" or not self.app_url:
            return url
        parts = urlsplit(self.app_url)
        host = self.qualified(parts.hostname or "")
        netloc = f"{host}:{parts.port}" if parts.port else host
        return parts._replace(netloc=netloc).geturl()


def docker(platform: Platform) -> Site:
    return Site("docker", DOCKER_DNS)


def kubernetes(platform: Platform, namespace: str | None = None) -> Site:
    kube = platform.kubernetes
    return Site("kubernetes", kube.dns.resolver, namespace, kube.dns.cluster_domain, str(kube.upstream))
