"""The gateway: nginx in front of the application, with security headers, CORS, rate limits
and a JSON audit log, from `security:`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from mindscape_ops.check.security import GATEWAY_GATES
from mindscape_ops.config.base import HttpUrl, ImageRef, PortSpec, Service, check_pattern
from mindscape_ops.services.definition import Artifact, ServiceDef, deploy
from mindscape_ops.services.spec import Mount, Probe

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

ServerName = Annotated[str, check_pattern(re.compile(r"^[A-Za-z0-9_.*-]+$"), "a server name", "api.example.com")]


class Gateway(Service):
    """nginx in front of the application: security headers, CORS, rate limits, audit log."""

    image: ImageRef = "nginx:1.27"
    port: PortSpec = 8080
    upstream: HttpUrl = "http://host.docker.internal:8000"
    server_name: ServerName = "_"


def container(platform: Platform) -> dict:
    return dict(
        container_port=8080,
        command=("nginx", "-g", "daemon off;"),
        mounts=(Mount(f"{platform.paths.deploy}/gateway/nginx.conf", "/etc/nginx/nginx.conf"),),
        healthcheck=("CMD-SHELL", "curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1"),
        reach_host=True,  # the application runs on the host
    )


SERVICE = ServiceDef(
    name="gateway",
    summary="nginx in front of the application: headers, CORS, rate limits, audit log",
    settings=Gateway,
    container=container,
    probe=Probe("http", "/healthz"),
    artifacts=(Artifact("gateway/nginx.conf.j2", deploy("gateway/nginx.conf")),),
    gates=GATEWAY_GATES,  # its `mindscape check` gates
)
