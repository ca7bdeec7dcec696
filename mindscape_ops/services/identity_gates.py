"""The identity service's `mindscape check` gates (group `auth`), against the live gateway:
`auth.enforced`, an anonymous request to a protected route is refused; `auth.jwt`, a user made
for the check logs in, its request passes the gateway, and the token the identity service mints
for it verifies against the JWKS the gateway publishes; `auth.roles`, a user without a route's
role is refused (403) where one with it passes; `auth.mfa`, a route that needs a second factor
refuses a password-only session (403) and lets the same user through once it enrolled TOTP and
logged in with a code; `auth.revocation`, a session logged out, and one revoked by the admin API,
are refused on the next request the gateway has not answered from its session cache, and within
services.identity.session_cache otherwise.
Each user made for a check is deleted after it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Failed, Gate, GateContext, Skipped
from mindscape_ops.services.gateway_routes import JWKS_PATH, Route, needs_mfa, routes

if TYPE_CHECKING:
    from mindscape_ops.services.identity_client import Endpoint


def _route(ctx: GateContext, which: Callable[[Route], bool] = lambda route: True, what: str = "") -> Route:
    """The first route with auth: required (and `which`), else the gate is skipped."""
    ctx.require("identity")
    ctx.require("gateway")
    found = [route for route in routes(ctx.platform) if route.auth == "required" and which(route)]
    if not found:
        raise Skipped(f"no route of services.gateway.routes has auth: required{what}")
    return found[0]


def _gateway(ctx: GateContext, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    import http.client

    from mindscape_ops.services.gateway import connection

    conn = connection(ctx)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(1 << 20)
    except (OSError, http.client.HTTPException) as exc:
        raise Failed(f"gateway: {method} {path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()


def enforced(ctx: GateContext) -> str:
    route = _route(ctx)
    status, _ = _gateway(ctx, "GET", route.path)
    if status != 401:
        raise Failed(f"an anonymous GET {route.path} answered {status}, not 401")
    return f"an anonymous GET {route.path} answered 401"


def _endpoints(ctx: GateContext) -> tuple[Endpoint, Endpoint]:
    from mindscape_ops.services.identity_client import Endpoint

    public = ctx.address("identity")
    return Endpoint(public.host, public.port), Endpoint(public.host, ctx.platform.services.identity.admin_port)


@contextlib.contextmanager
def _user(ctx: GateContext, roles: list[str]) -> Iterator[tuple[dict, str, Callable[[], str]]]:
    """A user made for the check (with these roles), a session token of it at AAL1, and how to
    log it in again; deleted after. IdentityError inside becomes the gate's failure."""
    from mindscape_ops.services import identity_client as kratos

    public, admin = _endpoints(ctx)
    email, password = f"check-{os.urandom(6).hex()}@mindscape.invalid", os.urandom(18).hex()
    try:
        made = kratos.create_identity(admin, email, password, roles)
    except kratos.IdentityError as exc:
        raise Failed(str(exc)) from None
    try:
        yield made, kratos.login(public, email, password), lambda: kratos.login(public, email, password)
    except kratos.IdentityError as exc:
        raise Failed(str(exc)) from None
    finally:
        with contextlib.suppress(kratos.IdentityError):
            kratos.delete_identity(admin, made["id"])


def _refusal(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error"))
    except (ValueError, AttributeError):
        return ""


def _passes(ctx: GateContext, route: Route, token: str, what: str) -> int:
    status, body = _gateway(ctx, "GET", route.path, {"X-Session-Token": token})
    if status in (401, 403, 503):
        raise Failed(f"GET {route.path} {what} answered {status}: {body[:200].decode(errors='replace')}")
    return status


def jwt(ctx: GateContext) -> str:
    from mindscape_ops.services import identity_client as kratos

    route = _route(ctx, lambda route: not needs_mfa(ctx.platform, route), " and no second factor")
    public, _ = _endpoints(ctx)
    with _user(ctx, list(route.roles)) as (_, token, _again):
        status = _passes(ctx, route, token, "with a session")
        template = ctx.platform.services.identity.token_template
        answer_status, session = public.call(
            "GET", f"/sessions/whoami?tokenize_as={template}", headers={"X-Session-Token": token}
        )
        if answer_status != 200 or not (session or {}).get("tokenized"):
            raise Failed(f"the identity service minted no token ({answer_status})")
        jwks_status, jwks_body = _gateway(ctx, "GET", JWKS_PATH)
        if jwks_status != 200:
            raise Failed(f"GET {JWKS_PATH} answered {jwks_status}")
        claims = kratos.verify_jwt(session["tokenized"], json.loads(jwks_body), ctx.platform.security.auth.jwt.audience)
    return (
        f"GET {route.path} with a session answered {status}; its token verifies against {JWKS_PATH} "
        f"(aud {claims['aud']}, aal {claims.get('aal')}, roles {claims.get('roles')})"
    )


def roles(ctx: GateContext) -> str:
    route = _route(ctx, lambda route: bool(route.roles), " and roles")
    others = [name for name in ctx.platform.security.auth.roles if name not in route.roles]
    with _user(ctx, others[:1]) as (_, token, _again):
        status, body = _gateway(ctx, "GET", route.path, {"X-Session-Token": token})
        if (status, _refusal(body)) != (403, "role_required"):
            raise Failed(f"GET {route.path} by a user with roles {others[:1] or 'none'} answered {status}, not 403")
    if needs_mfa(ctx.platform, route):
        return f"GET {route.path} by a user without one of {', '.join(route.roles)} answered 403 role_required"
    with _user(ctx, [route.roles[0]]) as (_, token, _again):
        passed = _passes(ctx, route, token, f"by a user with the role {route.roles[0]}")
    return (
        f"GET {route.path} answered 403 role_required to a user without one of {', '.join(route.roles)}, "
        f"{passed} to one with {route.roles[0]}"
    )


def mfa(ctx: GateContext) -> str:
    from mindscape_ops.services import identity_client as kratos

    route = _route(ctx, lambda route: needs_mfa(ctx.platform, route), " and a second factor")
    if "totp" not in ctx.platform.security.auth.mfa.methods:
        raise Skipped("security.auth.mfa.methods has no totp, the factor this check enrols")
    public, _ = _endpoints(ctx)
    with _user(ctx, list(route.roles)) as (_, token, again):
        secret = kratos.enrol_totp(public, token)  # that session is at aal2 from then on
        token = again()  # a new login, with the password only
        status, body = _gateway(ctx, "GET", route.path, {"X-Session-Token": token})
        if (status, _refusal(body)) != (403, "second_factor_required"):
            raise Failed(f"GET {route.path} with a password-only session (aal1) answered {status}, not 403")
        stronger = kratos.second_factor(public, token, secret)
        passed = _passes(ctx, route, stronger, "after the same login completed with a TOTP code (aal2)")
    return f"GET {route.path} answered 403 second_factor_required at aal1, {passed} at aal2 (TOTP)"


def _refused_within(ctx: GateContext, route: Route, token: str, what: str) -> float:
    """Seconds until a request with this session is refused (401): at once, or within the time
    the gateway may reuse the identity service's answer (services.identity.session_cache)."""
    import time

    cache = ctx.platform.services.identity.session_cache.seconds
    # nginx dates a cached answer in whole seconds: it may be reused up to a second longer
    allowed = cache + 1 if cache else 0
    started = time.monotonic()
    while True:
        status, _ = _gateway(ctx, "GET", route.path, {"X-Session-Token": token})
        waited = time.monotonic() - started
        if status == 401:
            return waited
        if waited > allowed:
            limit = f"within session_cache {cache:g}s (+1 s of nginx's rounding)" if cache else "at once"
            raise Failed(f"GET {route.path} after its session {what} answered {status}, not 401 {limit}")
        time.sleep(0.25)


def revocation(ctx: GateContext) -> str:
    """A session logged out before the gateway ever let it through is refused at once (nothing
    of it can be reused); one it let through, then revoked by the admin API, within
    services.identity.session_cache."""
    from mindscape_ops.services import identity_client as kratos

    route = _route(ctx, lambda route: not needs_mfa(ctx.platform, route), " and no second factor")
    public, admin = _endpoints(ctx)
    with _user(ctx, list(route.roles)) as (made, token, again):
        kratos.logout(public, token)
        status, _ = _gateway(ctx, "GET", route.path, {"X-Session-Token": token})
        if status != 401:
            raise Failed(f"GET {route.path} with a logged-out session answered {status}, not 401")
        token = again()
        _passes(ctx, route, token, "with a new session")
        kratos.revoke_sessions(admin, made["id"])
        revoked = _refused_within(ctx, route, token, "was revoked")
    return f"GET {route.path} answered 401 at once after a logout, {revoked:.1f}s after a revocation by the admin API"


REMEDY = (
    "`mindscape render --check`, then `mindscape up identity gateway`; `mindscape logs identity` and "
    "`mindscape logs gateway` say what refused"
)
GATES = (
    Gate("auth.enforced", enforced, REMEDY),
    Gate("auth.jwt", jwt, REMEDY, timeout=30),
    Gate("auth.roles", roles, REMEDY, timeout=30),
    Gate("auth.mfa", mfa, REMEDY, timeout=30),
    Gate("auth.revocation", revocation, REMEDY, timeout=30),
)
