"""The one shape every metrics exporter shares: it serves Prometheus' text format on one port
inside its container, Prometheus scrapes it there, and it is ready when GET /metrics shows the
line that proves it reads what it exports (`pg_up 1`, not only its own build info). An exporter
module keeps what is its own: settings, command and environment, what it depends on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mindscape_ops.services.contract import HttpProbe
from mindscape_ops.services.definition import Metrics, ServiceDef
from mindscape_ops.services.spec import Container

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.settings.base import Service

PATH = "/metrics"


def exporter(
    *,
    name: str,
    summary: str,
    settings: type[Service],
    port: int,
    ready_when: str,
    container: Callable[[Platform], Container],
    **more: Any,
) -> ServiceDef:
    """An exporter's ServiceDef: metrics on `port` (the port its container listens on), ready
    when GET /metrics shows `ready_when`; `more` are the other ServiceDef fields it needs."""
    return ServiceDef(
        name=name,
        summary=summary,
        settings=settings,
        container=container,
        probe=HttpProbe(PATH, expect=ready_when),
        metrics=Metrics(port, PATH),
        **more,
    )
