"""A small client of the identity service's HTTP APIs (Ory Kratos), for operators' commands, the
`auth.*` gates and the tests: identities through the admin API, a login through the public API's
native (API) flow, and the check of a JWT against a JWKS. Standard library and `cryptography`
only; secrets travel in request bodies, never in URLs."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any


class IdentityError(Exception):
    """The identity service refused or could not be reached: the message says what it said."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or None). Network failures raise IdentityError."""
        import http.client

        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Accept": "application/json", **({"Content-Type": "application/json"} if data else {})}
        try:
            conn.request(method, path, body=data, headers={**sent, **(headers or {})})
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise IdentityError(f"{method} {path} on {self.host}:{self.port}: {exc or type(exc).__name__}") from None
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None


def _reason(answer: Any) -> str:
    error = (answer or {}).get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("message") or error)
    messages = [m.get("text") for m in ((answer or {}).get("ui") or {}).get("messages") or []] if answer else []
    for node in (((answer or {}).get("ui") or {}).get("nodes") or []) if isinstance(answer, dict) else []:
        messages += [m.get("text") for m in node.get("messages") or []]
    return "; ".join(m for m in messages if m) or "no reason given"


def operator_endpoints(platform: Any) -> tuple[Endpoint, Endpoint]:
    """(public, admin) of the platform's identity service, for operators' commands on this machine."""
    from mindscape_ops.errors import UsageError
    from mindscape_ops.services.identity import SERVICE, endpoints

    if SERVICE.name not in platform.services.enabled():
        raise UsageError(
            f"services.{SERVICE.name} is not enabled", "add it to services in platform.yaml, then `mindscape up`"
        )
    return endpoints(platform)


# -- the admin API: identities ------------------------------------------------------------------------


def create_identity(admin: Endpoint, email: str, password: str, roles: list[str]) -> dict[str, Any]:
    body = {
        "schema_id": "mindscape",
        "traits": {"email": email},
        "metadata_public": {"roles": roles},
        "credentials": {"password": {"config": {"password": password}}},
        "state": "active",
    }
    status, answer = admin.call("POST", "/admin/identities", body)
    if status != 201:
        raise IdentityError(f"creating {email}: the identity service answered {status}: {_reason(answer)}")
    return answer


def list_identities(admin: Endpoint) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 0  # Kratos' pages count from 0: page 1 is the second
    while True:
        status, answer = admin.call("GET", f"/admin/identities?per_page=250&page={page}")
        if status != 200:
            raise IdentityError(f"listing identities: the identity service answered {status}: {_reason(answer)}")
        found += answer or []
        if len(answer or []) < 250:
            return found
        page += 1


def find_identity(admin: Endpoint, email: str) -> dict[str, Any]:
    status, answer = admin.call("GET", f"/admin/identities?credentials_identifier={_quote(email)}")
    if status != 200:
        raise IdentityError(f"finding {email}: the identity service answered {status}: {_reason(answer)}")
    if not answer:
        raise IdentityError(f"no identity has the e-mail {email}")
    return answer[0]


def set_state(admin: Endpoint, identity: dict[str, Any], state: str) -> None:
    """`inactive`: the identity can no longer log in, and its sessions are refused."""
    patch = [{"op": "replace", "path": "/state", "value": state}]
    status, answer = admin.call("PATCH", f"/admin/identities/{identity['id']}", patch)
    if status != 200:
        raise IdentityError(f"setting the state of {identity['id']}: answered {status}: {_reason(answer)}")
    if state != "active":  # its open sessions end now, not when they expire
        admin.call("DELETE", f"/admin/identities/{identity['id']}/sessions")


def set_roles(admin: Endpoint, identity: dict[str, Any], roles: list[str]) -> list[str]:
    """Replace the identity's roles (its public metadata, which the token's `roles` claim reads);
    returns the roles it had. Its sessions stay: the next token minted for them carries the new
    roles (within services.identity.session_cache of the gateway)."""
    before = list(((identity.get("metadata_public") or {}).get("roles")) or [])
    metadata = {**(identity.get("metadata_public") or {}), "roles": roles}
    patch = [
        {"op": "replace" if identity.get("metadata_public") else "add", "path": "/metadata_public", "value": metadata}
    ]
    status, answer = admin.call("PATCH", f"/admin/identities/{identity['id']}", patch)
    if status != 200:
        raise IdentityError(f"setting the roles of {identity['id']}: answered {status}: {_reason(answer)}")
    return before


def delete_identity(admin: Endpoint, identity_id: str) -> None:
    status, answer = admin.call("DELETE", f"/admin/identities/{identity_id}")
    if status not in (204, 404):
        raise IdentityError(f"deleting {identity_id}: the identity service answered {status}: {_reason(answer)}")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


# -- the public API: a login through the native (API) flow -------------------------------------------


def login(public: Endpoint, email: str, password: str) -> str:
    """A session token for this user (password, AAL1)."""
    status, flow = public.call("GET", "/self-service/login/api")
    if status != 200:
        raise IdentityError(f"starting a login flow: answered {status}: {_reason(flow)}")
    body = {"method": "password", "identifier": email, "password": password}
    status, answer = public.call("POST", f"/self-service/login?flow={flow['id']}", body)
    if status != 200 or not (answer or {}).get("session_token"):
        raise IdentityError(f"logging in as {email}: answered {status}: {_reason(answer)}")
    return answer["session_token"]


def logout(public: Endpoint, session_token: str) -> None:
    status, answer = public.call("DELETE", "/self-service/logout/api", {"session_token": session_token})
    if status != 204:
        raise IdentityError(f"logging out: answered {status}: {_reason(answer)}")


# -- a JWT, checked as an application checks it -------------------------------------------------------


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(token: str, jwks: dict[str, Any], audience: str, now: float | None = None) -> dict[str, Any]:
    """The claims of an RS256 JWT signed by a key of `jwks`, for `audience`, not expired; any
    other token (another algorithm, `none` included, an unknown key, a bad signature) raises
    IdentityError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        head, body, signature = token.split(".")
        header, claims = json.loads(_b64(head)), json.loads(_b64(body))
    except ValueError:
        raise IdentityError("not a JWT (three base64url parts of JSON)") from None
    if header.get("alg") != "RS256":
        raise IdentityError(f"algorithm {header.get('alg')!r} refused: only RS256 is accepted")
    key = next((k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise IdentityError(f"no key {header.get('kid')!r} in the JWKS")
    public = rsa.RSAPublicNumbers(int.from_bytes(_b64(key["e"]), "big"), int.from_bytes(_b64(key["n"]), "big"))
    try:
        public.public_key().verify(_b64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise IdentityError("bad signature") from None
    now = time.time() if now is None else now
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise IdentityError("expired (or no exp)")
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    if audience not in audiences:
        raise IdentityError(f"audience {claims.get('aud')!r} is not {audience!r}")
    return claims


# -- second factors: TOTP (RFC 6238) through the settings and login API flows ------------------------


def totp_code(secret: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """Pure: the RFC 6238 code (HMAC-SHA1, 30 s steps, 6 digits) of a base32 secret at a time."""
    import hashlib
    import hmac
    import struct

    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _totp_secret(flow: dict[str, Any]) -> str | None:
    for node in (flow.get("ui") or {}).get("nodes") or []:
        attributes = node.get("attributes") or {}
        if attributes.get("id") == "totp_secret_key":
            text = attributes.get("text") or {}
            return (text.get("context") or {}).get("secret") or text.get("text")
    return None


def enrol_totp(public: Endpoint, session_token: str) -> str:
    """Enrol a TOTP authenticator for the session's user through the settings API flow (the
    secret Kratos offers, confirmed with a code computed from it); returns the secret. Kratos
    counts the enrolment as a second factor: this session is at AAL2 from then on."""
    auth = {"X-Session-Token": session_token}
    status, flow = public.call("GET", "/self-service/settings/api", headers=auth)
    if status != 200:
        raise IdentityError(f"starting a settings flow: answered {status}: {_reason(flow)}")
    secret = _totp_secret(flow)
    if not secret:
        raise IdentityError("the settings flow offers no TOTP secret (is totp in security.auth.mfa.methods?)")
    body = {"method": "totp", "totp_code": totp_code(secret)}
    status, answer = public.call("POST", f"/self-service/settings?flow={flow['id']}", body, auth)
    if status != 200 or (answer or {}).get("state") != "success":
        raise IdentityError(f"enrolling TOTP: answered {status}: {_reason(answer)}")
    return secret


def second_factor(public: Endpoint, session_token: str, secret: str) -> str:
    """Raise the session to AAL2 with a TOTP code (login API flow with aal=aal2); returns the
    session token to use from then on."""
    auth = {"X-Session-Token": session_token}
    status, flow = public.call("GET", "/self-service/login/api?aal=aal2", headers=auth)
    if status != 200:
        raise IdentityError(f"starting a second-factor login: answered {status}: {_reason(flow)}")
    body = {"method": "totp", "totp_code": totp_code(secret)}
    status, answer = public.call("POST", f"/self-service/login?flow={flow['id']}", body, auth)
    if status != 200:
        raise IdentityError(f"logging in with TOTP: answered {status}: {_reason(answer)}")
    return (answer or {}).get("session_token") or session_token


SECOND_FACTOR_CREDENTIALS = ("totp", "lookup_secret", "webauthn")


def remove_second_factors(
    admin: Endpoint, identity: dict[str, Any], kinds: tuple[str, ...] = SECOND_FACTOR_CREDENTIALS
) -> list[str]:
    """Delete the identity's second-factor credentials of these kinds (admin API); returns those
    it had. Its sessions end too: one at AAL2 would outlive the factor that made it."""
    removed = []
    for kind in kinds:
        status, answer = admin.call("DELETE", f"/admin/identities/{identity['id']}/credentials/{kind}")
        if status == 204:
            removed.append(kind)
        elif status != 404:
            raise IdentityError(f"removing the {kind} of {identity['id']}: answered {status}: {_reason(answer)}")
    revoke_sessions(admin, identity["id"])
    return removed


def revoke_sessions(admin: Endpoint, identity_id: str) -> None:
    status, answer = admin.call("DELETE", f"/admin/identities/{identity_id}/sessions")
    if status not in (204, 404):
        raise IdentityError(f"revoking the sessions of {identity_id}: answered {status}: {_reason(answer)}")


# -- the token signing key ----------------------------------------------------------------------------


def rotate_signing_key(project: Any) -> tuple[str, list[str], bool]:
    """A new signing key (services/identity_keys.py: rotate_key), then the identity service restarted
    to sign with it: (new key id, key ids the JWKS publishes, restarted)."""
    from mindscape_ops.errors import UsageError
    from mindscape_ops.services.identity import restart_to_sign
    from mindscape_ops.services.identity_keys import JWKS_FILE, PRIVATE, rotate_key

    if not (project.root / PRIVATE / JWKS_FILE).is_file():
        raise UsageError("no signing key yet", "`mindscape up` makes the first one")
    kid, published = rotate_key(project)
    return kid, published, restart_to_sign(project)
