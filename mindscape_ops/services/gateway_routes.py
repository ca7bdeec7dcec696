"""Who may pass the gateway, route by route (`services.gateway.routes`): a route is a path prefix
with `auth` (required, optional, none), the `roles` of which a user needs one, and `mfa`. The
identity service (services.identity) says who a request is; the gateway's session check
(deploy/gateway/auth.js, nginx's JavaScript module) refuses or lets through, and hands the
application a short-lived signed JWT instead of the session."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import model_validator

from mindscape_ops.services.spec import Mount
from mindscape_ops.settings.base import Strict, check_pattern
from mindscape_ops.settings.types import Name

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import Problem

IDENTITY = "identity"  # the service that says who a request is
JWKS_PATH = "/.well-known/jwks.json"  # where the gateway publishes the token signing keys
RESERVED = ("/healthz", JWKS_PATH, "/_mindscape/")  # answered by the gateway itself
JS_IN_CONTAINER = "/etc/nginx/mindscape/auth.js"
JWKS_IN_CONTAINER = "/etc/nginx/mindscape/jwks.json"
PUBLIC_JWKS = ".mindscape/identity/jwks.public.json"  # written by the identity service's prepare hook

RoutePath = Annotated[
    str,
    check_pattern(
        re.compile(r"^/(?!.*//)(?!.*/\.\.?(/|$))[A-Za-z0-9._~/-]*$"), "a path prefix starting with /", "/api/"
    ),
]


class Route(Strict):
    """A path prefix and who may pass it. `roles`: any one of them lets a user through; `mfa:
    required`: only a session with a second factor (AAL2)."""

    path: RoutePath
    auth: Literal["required", "optional", "none"] = "required"
    roles: list[Name] = []
    mfa: Literal["required", "optional"] = "optional"

    @model_validator(mode="after")
    def _needs_auth(self) -> Route:
        if self.auth != "required" and (self.roles or self.mfa == "required"):
            raise ValueError(f"roles and mfa: required need auth: required (auth is {self.auth})")
        return self


def routes(platform: Platform) -> list[Route]:
    gateway = platform.services.gateway
    return list(gateway.routes) if gateway is not None else []


def protected(platform: Platform) -> bool:
    """Does any route ask who the user is (then the gateway runs the session check)?"""
    return any(route.auth != "none" for route in routes(platform))


def needs_mfa(platform: Platform, route: Route) -> bool:
    """A route needs a second factor when it says so, or when a role it names does
    (security.auth.roles.<role>.mfa_required)."""
    roles = platform.security.auth.roles
    return route.mfa == "required" or any(roles[name].mfa_required for name in route.roles if name in roles)


def mounts(platform: Platform) -> tuple[Mount, ...]:
    """What the gateway mounts for its session check: the script and the public signing keys."""
    if not protected(platform):
        return ()
    return (
        Mount(f"{platform.paths.deploy}/gateway/auth.js", JS_IN_CONTAINER),
        Mount(PUBLIC_JWKS, JWKS_IN_CONTAINER),
    )


def identity_edges(platform: Platform) -> tuple[str, ...]:
    """On a cluster: the gateway asks the identity service when a route is protected."""
    return (IDENTITY,) if protected(platform) and IDENTITY in platform.services.enabled() else ()


def identity_admin_edges(platform: Platform) -> tuple[tuple[str, int], ...]:
    """...and extends used sessions on its admin port when sessions have an idle timeout."""
    if not identity_edges(platform):
        return ()
    identity = platform.services.identity
    if not identity.timing(platform.security.auth.sessions).idle:
        return ()
    return ((IDENTITY, identity.admin_in_container),)


def problems(platform: Platform) -> list[Problem]:
    found: list[Problem] = []
    seen: set[str] = set()
    known = platform.security.auth.roles
    identity = IDENTITY in platform.services.enabled()
    for index, route in enumerate(routes(platform)):
        where = ("services", "gateway", "routes", index)
        if route.path in seen:
            found.append(((*where, "path"), f"{route.path} is listed twice; one route per path"))
        seen.add(route.path)
        if any(route.path == r or route.path.startswith(r) for r in RESERVED if r.endswith("/")) or (
            route.path in RESERVED
        ):
            found.append(((*where, "path"), f"{route.path} is answered by the gateway itself"))
        if route.auth != "none" and not identity:
            found.append(
                ((*where, "auth"), f"auth: {route.auth} needs services.identity (who the user is); add it to services")
            )
        for number, name in enumerate(route.roles):
            if name not in known:
                found.append(
                    (
                        (*where, "roles", number),
                        f"role {name!r} is not in security.auth.roles ({', '.join(known) or 'none defined'})",
                    )
                )
    return found
