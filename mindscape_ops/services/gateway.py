"""The gateway: nginx in front of the application, with TLS (or a trusted TLS proxy), security
headers, CORS, rate limits and a JSON audit log, from `security:`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from mindscape_ops.check.security import GATEWAY_GATES
from mindscape_ops.services.contract import HttpProbe
from mindscape_ops.services.definition import Artifact, KubeShape, Problem, ServiceDef, deploy
from mindscape_ops.services.spec import Container, Mount
from mindscape_ops.settings.base import HttpUrl, ImageRef, PortSpec, Service, check_pattern

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

ServerName = Annotated[str, check_pattern(re.compile(r"^[A-Za-z0-9_.*-]+$"), "a server name", "api.example.com")]


class Gateway(Service):
    """nginx in front of the application: security headers, CORS, rate limits, audit log."""

    image: ImageRef = "nginx:1.27"
    port: PortSpec = 8080
    upstream: HttpUrl = "http://host.docker.internal:8000"
    server_name: ServerName = "_"


# Where the files of `security.tls` are mounted (the nginx template names these paths).
TLS_IN_CONTAINER = {
    "certificate": "/etc/nginx/tls/certificate.pem",
    "key": "/etc/nginx/tls/key.pem",
    "upstream_ca": "/etc/nginx/tls/upstream-ca.pem",
}


def tls_mounts(platform: Platform) -> tuple[Mount, ...]:
    """The certificate, key and upstream CA named in `security.tls`, read-only: a relative path
    is the project's, an absolute one the host's."""
    tls = platform.security.tls
    mounts = []
    for key, target in TLS_IN_CONTAINER.items():
        source = getattr(tls, key)
        if source:
            mounts.append(Mount(source, target, host=source.startswith("/")))
    return tuple(mounts)


REDIRECT_PORT = 8081  # plain HTTP, redirected to HTTPS (security.tls.redirect_port)


def container(platform: Platform) -> Container:
    redirect = platform.security.tls.redirect_port
    return Container(
        container_port=8080,
        extra_ports={REDIRECT_PORT: redirect} if redirect else {},
        command=("nginx", "-g", "daemon off;"),
        mounts=(Mount(f"{platform.paths.deploy}/gateway/nginx.conf", "/etc/nginx/nginx.conf"), *tls_mounts(platform)),
        healthcheck=("CMD-SHELL", "curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1"),
        reach_host=True,  # the application runs on the host
    )


def tls_files_exist(project: Project, secrets: Mapping[str, str]) -> list[str]:
    """Before `up`: each file of `security.tls` is there (Docker would mount a missing one as
    an empty folder, and nginx would stop on it)."""
    from mindscape_ops.errors import UsageError

    tls = project.platform.security.tls
    for key in TLS_IN_CONTAINER:
        source = getattr(tls, key)
        if source and not (project.root / source).is_file():  # an absolute source stays absolute
            raise UsageError(
                f"security.tls.{key}: {source} is not a file",
                "point it at a PEM file (relative to the folder holding platform.yaml, or absolute)",
            )
    return []


def problems(platform: Platform) -> list[Problem]:
    tls, gateway = platform.security.tls, platform.services.gateway
    found: list[Problem] = []
    if tls.upstream_ca and not gateway.upstream.startswith("https://"):
        found.append(
            (("security", "tls", "upstream_ca"), "is used only with an https upstream (services.gateway.upstream)")
        )
    if tls.redirect_port and not isinstance(gateway.port, int):
        found.append(
            (("services", "gateway", "port"), "a number with security.tls.redirect_port: the redirect names it")
        )
    taken = {s.port: f"services.{n}.port" for n, s in platform.services.enabled().items() if isinstance(s.port, int)}
    if tls.redirect_port in taken:
        found.append(
            (
                ("security", "tls", "redirect_port"),
                f"port {tls.redirect_port} is already used by {taken[tls.redirect_port]}",
            )
        )
    if platform.environment == "production" and tls.mode == "plain" and not gateway.bind.startswith("127."):
        found.append(
            (
                ("security", "tls", "mode"),
                f"plain HTTP on {gateway.bind} in production: set mode terminate (certificate, key) or proxy "
                "(trusted_proxies), or bind the gateway to 127.0.0.1",
            )
        )
    return found


SERVICE = ServiceDef(
    name="gateway",
    summary="nginx in front of the application: headers, CORS, rate limits, audit log",
    settings=Gateway,
    container=container,
    probe=HttpProbe("/healthz"),
    artifacts=(Artifact("gateway/nginx.conf.j2", deploy("gateway/nginx.conf")),),
    gates=GATEWAY_GATES,  # its `mindscape check` gates
    problems=problems,
    prepare=tls_files_exist,
    kubernetes=KubeShape(run_as=101, writable=("/tmp", "/var/cache/nginx"), public=True),
)
