"""The identity service's `mindscape check` gates (group `auth`), against the live gateway:
`auth.enforced`, an anonymous request to a protected route is refused; `auth.jwt`, a user made
for the check logs in, its request passes the gateway, and the token the identity service mints
for it verifies against the JWKS the gateway publishes (the check's user is deleted after)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from mindscape_ops.services.contract import Failed, Gate, GateContext, Skipped
from mindscape_ops.services.gateway_routes import JWKS_PATH, Route, routes

if TYPE_CHECKING:
    from mindscape_ops.services.identity_client import Endpoint


def _route(ctx: GateContext) -> Route:
    ctx.require("identity")
    ctx.require("gateway")
    found = [route for route in routes(ctx.platform) if route.auth == "required"]
    if not found:
        raise Skipped("no route of services.gateway.routes has auth: required")
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


def jwt(ctx: GateContext) -> str:
    from mindscape_ops.services import identity_client as kratos

    route = _route(ctx)
    public, admin = _endpoints(ctx)
    email, password = f"check-{os.urandom(6).hex()}@mindscape.invalid", os.urandom(18).hex()
    try:
        made = kratos.create_identity(admin, email, password, list(route.roles))
    except kratos.IdentityError as exc:
        raise Failed(str(exc)) from None
    try:
        token = kratos.login(public, email, password)
        status, body = _gateway(ctx, "GET", route.path, {"X-Session-Token": token})
        if status in (401, 403, 503):
            raise Failed(f"GET {route.path} with a session answered {status}: {body[:200].decode(errors='replace')}")
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
    except kratos.IdentityError as exc:
        raise Failed(str(exc)) from None
    finally:
        kratos.delete_identity(admin, made["id"])
    return (
        f"GET {route.path} with a session answered {status}; its token verifies against {JWKS_PATH} "
        f"(aud {claims['aud']}, aal {claims.get('aal')}, roles {claims.get('roles')})"
    )


REMEDY = (
    "`mindscape render --check`, then `mindscape up identity gateway`; `mindscape logs identity` and "
    "`mindscape logs gateway` say what refused"
)
GATES = (
    Gate("auth.enforced", enforced, REMEDY),
    Gate("auth.jwt", jwt, REMEDY, timeout=30),
)
