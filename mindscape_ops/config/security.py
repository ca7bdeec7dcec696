"""The gateway's part of `security:`: TLS (how clients reach it), the headers it adds, and the
per-client limits it enforces. The rest of `security:` (CORS, auth, ...) is in models.py."""

from __future__ import annotations

import ipaddress
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from mindscape_ops.settings.base import Strict
from mindscape_ops.settings.types import Duration, Text, check_relative_path, check_single_line


def _check_cidr(value: str) -> str:
    """An address or network (IPv4 or IPv6), written back in its canonical form."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(value.strip(), strict=False)
            raise ValueError(f"{value!r} has host bits set; did you mean {loose}?") from None
        raise ValueError(f"{value!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8, 192.0.2.7)") from None
    if network.prefixlen == 0:
        raise ValueError(
            f"{value!r} trusts every address: any client could then pick its own address (and rate-limit "
            "bucket) with X-Forwarded-For; list only your proxies' networks"
        )
    return str(network)


def _check_host_file(value: str) -> str:
    """A file on the host: absolute, or relative to the folder holding platform.yaml."""
    check_single_line(value)
    if PurePosixPath(value).is_absolute():
        if value.endswith("/") or "\0" in value or len(value) > 4096:
            raise ValueError(f"{value!r} is not a file path")
        return value
    return check_relative_path(value)


Cidr = Annotated[str, AfterValidator(_check_cidr)]
HostFile = Annotated[str, AfterValidator(_check_host_file)]


class Tls(Strict):
    """How clients reach the gateway. `plain` (the default) is plain HTTP for local development
    on 127.0.0.1; `terminate` serves HTTPS with `certificate` and `key`; `proxy` sits behind a
    TLS proxy whose addresses are `trusted_proxies` (their X-Forwarded-For is believed)."""

    mode: Literal["plain", "terminate", "proxy"] = "plain"
    certificate: HostFile | None = None
    key: HostFile | None = None
    redirect_port: int | None = Field(None, ge=1, le=65535)
    trusted_proxies: list[Cidr] = []
    upstream_ca: HostFile | None = None

    @model_validator(mode="after")
    def _mode_settings(self) -> Tls:
        if self.mode == "terminate" and not (self.certificate and self.key):
            raise ValueError("mode terminate needs certificate and key (PEM files, paths on this machine)")
        if self.mode != "terminate" and (self.certificate or self.key or self.redirect_port):
            raise ValueError(
                f"certificate, key and redirect_port are used only with mode terminate (mode is {self.mode})"
            )
        if self.mode == "proxy" and not self.trusted_proxies:
            raise ValueError("mode proxy needs trusted_proxies: the addresses or CIDRs of your TLS proxies")
        if self.mode != "proxy" and self.trusted_proxies:
            raise ValueError(f"trusted_proxies is used only with mode proxy (mode is {self.mode})")
        return self


class Hsts(Strict):
    enabled: bool = True
    max_age: Duration = Duration("365d")
    include_subdomains: bool = True
    preload: bool = False


class Headers(Strict):
    """Security headers the gateway adds to every response (HSTS only to a client on TLS)."""

    hsts: Hsts = Hsts()
    content_security_policy: Text = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
    frame_options: Literal["DENY", "SAMEORIGIN"] = "DENY"
    referrer_policy: Literal[
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    ] = "strict-origin-when-cross-origin"
    permissions_policy: Text = "camera=(), microphone=(), geolocation=(), payment=()"
    cross_origin_opener_policy: Literal["same-origin", "same-origin-allow-popups", "unsafe-none"] = "same-origin"
    cross_origin_resource_policy: Literal["same-origin", "same-site", "cross-origin"] = "same-origin"
    cross_origin_embedder_policy: Literal["require-corp", "credentialless", "unsafe-none"] = "require-corp"


class RateLimit(Strict):
    """Per-client (by address) request rate and open requests at the gateway; over either,
    `status` is returned."""

    enabled: bool = True
    requests_per_second: int = Field(10, ge=1, le=100000)
    burst: int = Field(20, ge=0, le=100000)
    connections_per_client: int = Field(100, ge=1, le=100000)
    status: int = Field(429, ge=400, le=599)
