"""services.identity and the gateway's routes as a user declares them: each mistake reported at
its `platform.yaml:LINE:COL: path` with what to do, the identity server's configuration made
from security.auth (one source of truth), its signing keys kept out of every rendered file, and
the pure parts of the JWT check. In-process and fast (no engine)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services import identity, identity_keys
from mindscape_ops.services.identity_client import IdentityError, verify_jwt
from mindscape_ops.settings.types import Duration

from .conftest import EXAMPLES

HEAD = "version: 1\nproject: shop\n"
MFA = "security:\n  auth:\n    mfa: {methods: [totp, lookup_secret]}\n"


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "platform.yaml"
    path.write_text(HEAD + text)
    with pytest.raises(ConfigError) as caught:
        load([path], env={})
    return [problem.removeprefix(f"{path}:") for problem in caught.value.problems]


BROKEN = {
    "a protected route without the identity service": (
        "services:\n  gateway:\n    routes: [{path: /api/}]\n",
        [
            "5:14: services.gateway.routes[0].auth: auth: required needs services.identity (who the user is); "
            "add it to services"
        ],
    ),
    "an unknown role": (
        "services:\n  postgres: {}\n  identity: {}\n  gateway:\n    routes: [{path: /api/, roles: [usr]}]\n" + MFA,
        ["7:36: services.gateway.routes[0].roles[0]: role 'usr' is not in security.auth.roles (admin, member, viewer)"],
    ),
    "roles on a public route": (
        "services:\n  gateway:\n    routes: [{path: /api/, auth: none, roles: [admin]}]\n",
        ["5:14: services.gateway.routes[0]: roles and mfa: required need auth: required (auth is none)"],
    ),
    "a path that is no prefix": (
        "services:\n  gateway:\n    routes: [{path: 'api/x', auth: none}]\n",
        ["5:21: services.gateway.routes[0].path: 'api/x' is not a path prefix starting with / (e.g. /api/)"],
    ),
    "the identity service without postgres": (
        "services:\n  identity: {}\n" + MFA,
        ["4:13: services.identity: needs services.postgres, which is not enabled; add it or disable identity"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_mistake_is_reported_in_place(tmp_path: Path, case: str) -> None:
    text, expected = BROKEN[case]
    assert problems_of(tmp_path, text) == expected


def example(tmp_path: Path):
    local = tmp_path / "local"
    local.mkdir()
    for name in ("platform.yaml", "auth.yaml"):
        (local / name).write_text((EXAMPLES / "local" / name).read_text())
    return load([local / "platform.yaml", local / "auth.yaml"], env={}).platform


def test_the_example_loads_and_its_routes_are_as_the_issue_says(tmp_path: Path) -> None:
    platform = example(tmp_path)
    routes = {route.path: route for route in platform.services.gateway.routes}
    assert routes["/api/"].auth == "required" and routes["/api/"].roles == ["user"]
    assert routes["/admin/"].roles == ["admin"] and routes["/admin/"].mfa == "required"
    assert platform.services.identity.image == "mindscape-local/identity:1.3.1"


def test_the_identity_server_is_configured_from_security_auth(tmp_path: Path) -> None:
    platform = example(tmp_path)
    files = render_platform(platform)
    kratos = yaml.safe_load(files["deploy/identity/kratos.yml"])
    auth = platform.security.auth
    # the idle timeout: the gateway extends a used session (test_identity_sessions.py)
    assert kratos["session"]["lifespan"] == f"{auth.sessions.idle_timeout.seconds:.0f}s"
    template = kratos["session"]["whoami"]["tokenizer"]["templates"]["mindscape"]
    assert template["ttl"] == "5m" and template["jwks_url"].startswith("file:///etc/kratos/private/")
    password = kratos["selfservice"]["methods"]["password"]["config"]
    assert password["min_password_length"] == auth.password.min_length
    methods = kratos["selfservice"]["methods"]
    assert methods["totp"]["enabled"] and methods["lookup_secret"]["enabled"]
    assert kratos["selfservice"]["flows"]["registration"]["enabled"] is False
    claims = files["deploy/identity/claims.jsonnet"]
    assert 'aud: "api"' in claims and "metadata_public" in claims
    json.loads(files["deploy/identity/identity.schema.json"])


def test_the_gateway_checks_each_protected_route(tmp_path: Path) -> None:
    platform = example(tmp_path)
    files = render_platform(platform)
    conf = files["deploy/gateway/nginx.conf"]
    assert "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;" in conf
    assert "location /api/ {" in conf and "location /admin/ {" in conf and "location / {" in conf
    admin = conf[conf.index("location /admin/ {") :]
    assert "set $mindscape_mfa required;" in admin[: admin.index("}")]
    assert "location = /.well-known/jwks.json" in conf
    script = files["deploy/gateway/auth.js"]
    assert script.startswith("// generated by mindscape") and '"mindscape_session"' in script


def test_no_route_no_check(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(HEAD + "services: {gateway: {}}\n")
    files = render_platform(load([path], env={}).platform)
    conf = files["deploy/gateway/nginx.conf"]  # njs only for the upstream's /etc/hosts lookup
    assert "mindscape_auth" not in conf and "js_content" not in conf and "deploy/gateway/auth.js" not in files


# -- secrets and keys ---------------------------------------------------------------------------------


def test_signing_keys_are_made_once_private_and_never_rendered(tmp_path: Path) -> None:
    platform = example(tmp_path)
    secrets = {"IDENTITY_DB_PASSWORD": "db-secret-value", "IDENTITY_COOKIE_SECRET": "cookie-secret-value"}
    project = SimpleNamespace(root=tmp_path / "local", platform=platform)
    identity.prepare(project, secrets)
    folder = tmp_path / "local" / identity_keys.PRIVATE
    private = json.loads((folder / identity_keys.JWKS_FILE).read_text())
    assert (folder / identity_keys.JWKS_FILE).stat().st_mode & 0o777 == 0o600
    assert (folder / identity.SECRETS_FILE).stat().st_mode & 0o777 == 0o600
    public = json.loads((folder / identity_keys.PUBLIC_JWKS_FILE).read_text())
    assert set(public["keys"][0]) == {"kty", "use", "alg", "kid", "n", "e"}
    identity.prepare(project, secrets)  # kept, not remade
    assert json.loads((folder / identity_keys.JWKS_FILE).read_text()) == private
    rendered = "\n".join(render_platform(platform).values())
    for value in (*secrets.values(), private["keys"][0]["d"]):
        assert value not in rendered


# -- the JWT check ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(key: dict, claims: dict, alg: str = "RS256") -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    def num(name: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(key[name] + "=" * (-len(key[name]) % 4)), "big")

    public = rsa.RSAPublicNumbers(num("e"), num("n"))
    private = rsa.RSAPrivateNumbers(num("p"), num("q"), num("d"), num("dp"), num("dq"), num("qi"), public).private_key()
    head = _b64(json.dumps({"alg": alg, "kid": key["kid"], "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = private.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


def test_a_token_verifies_only_when_signed_for_this_audience_and_unexpired() -> None:
    key = identity_keys.new_signing_key()
    jwks = identity_keys.public_jwks({"keys": [key]})
    good = {"sub": "u1", "aud": "api", "exp": int(time.time()) + 60, "roles": ["user"], "aal": "aal1"}
    assert verify_jwt(_signed(key, good), jwks, "api")["roles"] == ["user"]
    head, body, _ = _signed(key, good).split(".")
    none = f"{_b64(json.dumps({'alg': 'none', 'kid': key['kid']}).encode())}.{body}."
    forged_body = _b64(json.dumps({**good, "roles": ["admin"]}).encode())
    refused = {
        "alg none": none,
        "tampered claims": f"{head}.{forged_body}.{_signed(key, good).split('.')[2]}",
        "another audience": _signed(key, {**good, "aud": "other"}),
        "expired": _signed(key, {**good, "exp": int(time.time()) - 1}),
        "another key": _signed(identity_keys.new_signing_key() | {"kid": key["kid"]}, good),
    }
    for name, token in refused.items():
        with pytest.raises(IdentityError):
            verify_jwt(token, jwks, "api")
            pytest.fail(f"{name} verified")


# -- second factors, key rotation, the self-service rate limit, Kubernetes ----------------------------


def test_totp_codes_are_rfc_6238s() -> None:
    from mindscape_ops.services.identity_client import totp_code

    secret = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1
    vectors = {59: "94287082", 1111111109: "07081804", 1111111111: "14050471", 2000000000: "69279037"}
    for at, expected in vectors.items():
        assert totp_code(secret, at, digits=8) == expected
        assert totp_code(secret, at) == expected[-6:]


def test_a_rotation_keeps_the_old_key_until_its_tokens_expire() -> None:
    old, new = identity_keys.new_signing_key(), identity_keys.new_signing_key()
    private, retiring = identity_keys.rotated({"keys": [old]}, {}, new, now=1000.0, keep_for=930.0)
    assert [k["kid"] for k in private["keys"]] == [new["kid"], old["kid"]]  # the new one signs
    assert retiring == {old["kid"]: 1930.0}
    assert identity_keys.pruned(private, retiring, now=1929.0) == (private, retiring)
    assert identity_keys.pruned(private, retiring, now=1931.0) == ({"keys": [new]}, {})
    # a second rotation keeps the first one's time for the oldest key
    newest = identity_keys.new_signing_key()
    _, again = identity_keys.rotated(private, retiring, newest, now=1500.0, keep_for=930.0)
    assert again == {old["kid"]: 1930.0, new["kid"]: 2430.0}


def test_rotate_key_publishes_both_and_prepare_drops_the_expired(tmp_path: Path) -> None:
    platform = example(tmp_path)
    project = SimpleNamespace(root=tmp_path / "local", platform=platform)
    secrets = {"IDENTITY_DB_PASSWORD": "p", "IDENTITY_COOKIE_SECRET": "c"}
    identity.prepare(project, secrets)
    folder = tmp_path / "local" / identity_keys.PRIVATE
    public_file = folder / identity_keys.PUBLIC_JWKS_FILE
    inode = public_file.stat().st_ino
    (first,) = [k["kid"] for k in json.loads(public_file.read_text())["keys"]]
    kid, published = identity_keys.rotate_key(project, now=time.time())
    assert published == [kid, first]
    assert [k["kid"] for k in json.loads(public_file.read_text())["keys"]] == [kid, first]
    assert public_file.stat().st_ino == inode  # rewritten in place: the gateway's mount sees it
    assert (folder / identity_keys.RETIRING_FILE).stat().st_mode & 0o777 == 0o600
    identity.prepare(project, secrets)  # the old key's tokens (5m + 30s) have not expired
    assert len(json.loads(public_file.read_text())["keys"]) == 2
    (folder / identity_keys.RETIRING_FILE).write_text(json.dumps({first: time.time() - 1}))  # now they have
    identity.prepare(project, secrets)
    assert [k["kid"] for k in json.loads(public_file.read_text())["keys"]] == [kid]
    assert [k["kid"] for k in json.loads((folder / identity_keys.JWKS_FILE).read_text())["keys"]] == [kid]


def test_the_self_service_api_is_behind_a_stricter_limit(tmp_path: Path) -> None:
    conf = render_platform(example(tmp_path))["deploy/gateway/nginx.conf"]
    assert "limit_req_zone $binary_remote_addr zone=mindscape_login:1m rate=10r/m;" in conf
    block = conf[conf.index("location ^~ /_mindscape/identity/self-service/ {") :]
    block = block[: block.index("}")]
    assert "limit_req zone=mindscape_login burst=5 nodelay;" in block and "limit_req_status 429;" in block
    assert "resolver 127.0.0.11 " in block


def test_on_kubernetes_the_gateway_asks_the_clusters_dns_for_the_identity_service(tmp_path: Path) -> None:
    from mindscape_ops.render.artifacts import render_files
    from mindscape_ops.render.site import kubernetes

    platform = example(tmp_path)
    platform = platform.model_copy(update={"kubernetes": load_kubernetes(tmp_path)})
    conf = render_files(platform, site=kubernetes(platform, "shop-staging"))["deploy/gateway/nginx.conf"]
    whoami = conf[conf.index("location = /_mindscape/whoami {") :]
    whoami = whoami[: whoami.index("}")]
    assert "127.0.0.11" not in conf
    assert f"resolver {platform.kubernetes.dns.resolver} " in whoami
    assert '"identity.shop-staging.svc.' in whoami


def load_kubernetes(tmp_path: Path):
    path = tmp_path / "k.yaml"
    path.write_text(HEAD + "kubernetes: {}\n")
    return load([path], env={}).platform.kubernetes


def test_the_auth_gates_are_the_issues_five() -> None:
    assert [gate.id for gate in identity.SERVICE.gates] == [
        "auth.enforced",
        "auth.jwt",
        "auth.roles",
        "auth.mfa",
        "auth.revocation",
    ]


def test_the_session_cache_is_a_few_seconds_unless_switched_off(tmp_path: Path) -> None:
    platform = example(tmp_path)
    assert platform.services.identity.session_cache.seconds == 3  # the issue's "a few seconds"
    assert "proxy_cache_valid 200 3s;" in render_platform(platform)["deploy/gateway/nginx.conf"]
    off = platform.model_copy(
        update={
            "services": platform.services.model_copy(
                update={"identity": platform.services.identity.model_copy(update={"session_cache": Duration("0s")})}
            )
        }
    )
    # (a cache of its own remains: the idle timeout's session extensions, test_identity_sessions.py)
    assert "mindscape_sessions" not in render_platform(off)["deploy/gateway/nginx.conf"]
    cached = platform.model_copy(
        update={
            "services": platform.services.model_copy(
                update={"identity": platform.services.identity.model_copy(update={"session_cache": Duration("5s")})}
            )
        }
    )
    conf = render_platform(cached)["deploy/gateway/nginx.conf"]
    whoami = conf[conf.index("location = /_mindscape/whoami {") :]
    whoami = whoami[: whoami.index("}")]
    assert "proxy_cache mindscape_sessions;" in whoami and "proxy_cache_valid 200 5s;" in whoami
    assert "$http_x_session_token|$cookie_mindscape_session|$http_authorization" in whoami
