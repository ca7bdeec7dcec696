"""`services:` in platform.yaml: one optional section per registered service, in start order.

A service listed in the file is enabled (even as a bare `postgres:` line) unless it says
`enabled: false`; a service not listed does not exist, as in a compose file.
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model, model_validator

from mindscape_ops.services.registry import SERVICES
from mindscape_ops.settings.base import Service, Strict


class _ServicesBase(Strict):
    @model_validator(mode="before")
    @classmethod
    def _listed_means_enabled(cls, data: Any) -> Any:
        # `postgres:` with nothing after it is YAML null: the user listed it, so it exists.
        if isinstance(data, dict):
            return {key: ({} if value is None else value) for key, value in data.items()}
        return data

    def enabled(self) -> dict[str, Service]:
        """Enabled services, in start order."""
        found = {service.name: getattr(self, service.name) for service in SERVICES}
        return {name: svc for name, svc in found.items() if svc is not None and svc.enabled}

    def log_store(self) -> str | None:
        """The enabled service every other container's output goes to (a log sink), if any."""
        enabled = self.enabled()
        return next((s.name for s in SERVICES if s.log_sink is not None and s.name in enabled), None)

    def database(self) -> str:
        """The service that is the platform's database (ServiceDef.platform_database), enabled
        or not: what `migrate`, `check` and backups connect to when $DATABASE_URL is not set."""
        return next(s.name for s in SERVICES if s.platform_database)


Services = create_model(
    "Services",
    __base__=_ServicesBase,
    __doc__="The services the platform runs, each with its own settings.",
    **{service.name: (service.settings | None, None) for service in SERVICES},
)

__all__ = ["Services"]
