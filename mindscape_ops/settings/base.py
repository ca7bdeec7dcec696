"""The building blocks of platform.yaml's models: the strict base model, value types with
their checks, and the keys every service has (`services.<service>`). Each service's own
settings live in its module under mindscape_ops/services/."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator

from mindscape_ops.settings.types import Duration, Name

_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}:\d{1,5}$")
_URL_RE = re.compile(r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?$")
_HTTP_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_IPV4_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def check_pattern(pattern: re.Pattern[str], what: str, example: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what} (e.g. {example})")
        return value

    return AfterValidator(check)


def _port_in_range(pattern: re.Pattern[str], what: str, example: str):
    """The pattern, and a port (if any) from 1 to 65535: `http://h:99999` is no URL."""

    def check(value: str) -> str:
        port = re.search(r"^(?:https?://)?[^/:]+:(\d+)", value)
        if not pattern.match(value) or (port and not 1 <= int(port.group(1)) <= 65535):
            raise ValueError(f"{value!r} is not {what} (e.g. {example})")
        return value

    return AfterValidator(check)


def _check_bind(value: str) -> str:
    match = _IPV4_RE.match(value)
    if not match or any(int(part) > 255 for part in match.groups()):
        raise ValueError(
            f"{value!r} is not an IPv4 address; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        )
    return value


ImageRef = Annotated[str, check_pattern(_IMAGE_RE, "an image reference", "postgres:16 or registry.local/team/api:1.2")]
HostPort = Annotated[
    str, _port_in_range(_HOSTPORT_RE, "a host:port address (port 1-65535)", "api:8000 or host.docker.internal:8000")
]
HttpUrl = Annotated[
    str, _port_in_range(_URL_RE, "an http(s) URL without query or spaces", "http://host.docker.internal:8000")
]
HttpPath = Annotated[str, check_pattern(_HTTP_PATH_RE, "an absolute URL path", "/metrics")]
BindAddress = Annotated[str, AfterValidator(_check_bind)]


def parse_port(value: Any) -> int | str:
    """A host port: 1-65535, or `auto` (a free port is picked once and kept in state)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port; use a number from 1 to 65535, or auto")
    return value


PortSpec = Annotated[int | str, PlainValidator(parse_port)]


class Health(Strict):
    """How long `up` waits for a service to be really ready, and how often it looks."""

    timeout: Duration = Duration("120s")
    interval: Duration = Duration("100ms")
    start_period: Duration = Duration("0s")


class ScrapeTarget(Strict):
    """An application Prometheus scrapes (and alerts on: 5xx rate, latency)."""

    name: Name
    targets: list[HostPort] = Field(min_length=1)
    metrics_path: HttpPath = "/metrics"
    scheme: Literal["http", "https"] = "http"
    scrape_interval: Duration | None = None


class Service(Strict):
    """The keys every service has; a service's module subclasses it with its own settings and defaults."""

    enabled: bool = True
    image: ImageRef
    port: PortSpec
    bind: BindAddress = "127.0.0.1"
    health: Health = Health()
