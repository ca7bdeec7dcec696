"""Where the rendered files run: the platform's Docker network (`up`, the compose export) or a
Kubernetes namespace. A config that names another service (the gateway's upstream, a log
target) names it the way that place resolves it, and with the DNS server that serves it there,
so that a process can look the name up when it needs it instead of refusing to start."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mindscape_ops.services.spec import HOST_NAME

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

DOCKER_DNS = "127.0.0.11"  # the embedded DNS of a user-defined Docker network
# Names no DNS server serves, only /etc/hosts: localhost, always there; host.docker.internal,
# there only where Docker wrote it (extra_hosts; never in a pod), so a process that reads it
# once at start refuses to start elsewhere.
ALWAYS_IN_HOSTS_FILE = ("localhost",)
DOCKER_HOSTS_ENTRIES = (HOST_NAME,)


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

    def lookup(self, host: str) -> str:
        """How a process there finds `host`: "start" (an address, or localhost: nothing can
        change, read once at start), "hosts" (on the Docker network, an entry Docker writes into
        /etc/hosts that may be missing: read from that file when it is needed) or "dns" (asked
        of the site's DNS server when it is needed: on a cluster, host.docker.internal too, which
        no pod's /etc/hosts has)."""
        if self.target == "docker" and host.lower() in DOCKER_HOSTS_ENTRIES:
            return "hosts"
        if host.lower() in ALWAYS_IN_HOSTS_FILE:
            return "start"
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return "dns"
        return "start"

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
