"""Names and labels every Kubernetes object of the platform shares. Kubernetes names are DNS
labels: `postgres_exporter` is `postgres-exporter` there."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

MANAGED_BY = "mindscape"


def dns(name: str) -> str:
    return name.replace("_", "-")


def slug(text: str) -> str:
    """A path as a DNS-label-safe word: /etc/nginx/nginx.conf -> etc-nginx-nginx-conf."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def selector(platform: Platform, service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": dns(service), "app.kubernetes.io/instance": platform.project}


def labels(platform: Platform, service: str, component: str | None = None) -> dict[str, str]:
    return {
        **selector(platform, service),
        "app.kubernetes.io/component": component or dns(service),
        "app.kubernetes.io/part-of": platform.project,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def meta(platform: Platform, name: str, service: str, component: str | None = None) -> dict[str, Any]:
    return {"name": name, "labels": labels(platform, service, component)}


def secret_name(platform: Platform) -> str:
    kube = platform.kubernetes
    return (kube.secrets.name if kube and kube.secrets.name else None) or f"{dns(platform.project)}-secrets"


def namespace(platform: Platform, environment: str) -> str:
    base = (platform.kubernetes.namespace if platform.kubernetes else None) or dns(platform.project)
    return f"{base}-{environment}"


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
