"""security.auth.sessions as the identity service and the gateway keep it: Kratos' session
lifespan is the idle timeout, the gateway extends a used session through the admin API (at most
once a step) and refuses one past the absolute timeout; without an idle timeout shorter than the
absolute one, the lifespan is the absolute timeout and nothing is extended. In-process (no
engine); the live proof is test_identity_idle_engine.py, the gateway's script against a
stand-in test_gateway_auth.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.identity_settings import SessionTiming, session_timing

from .render_support import platform_from


def platform(tmp_path: Path, sessions: dict | None = None, **auth):
    data = {
        "version": 1,
        "project": "shop",
        "services": {
            "postgres": {},
            "identity": {},
            "gateway": {"routes": [{"path": "/api/"}]},
        },
        "security": {"auth": {"mfa": {"methods": ["totp", "lookup_secret"]}, **auth}},
    }
    if sessions is not None:
        data["security"]["auth"]["sessions"] = sessions
    return platform_from(tmp_path, data)


@pytest.mark.parametrize(
    ("idle", "absolute", "expected"),
    [
        (1800, 43200, SessionTiming(lifespan=1800, idle=1800, absolute=43200, step=60)),
        (6, 3600, SessionTiming(lifespan=6, idle=6, absolute=3600, step=1)),
        (300, 3600, SessionTiming(lifespan=300, idle=300, absolute=3600, step=30)),
        (3600, 3600, SessionTiming(lifespan=3600, idle=0, absolute=3600, step=0)),
    ],
)
def test_the_step_is_a_tenth_of_the_idle_timeout_within_a_second_and_a_minute(idle, absolute, expected) -> None:
    assert session_timing(idle, absolute) == expected


def kratos(files: dict[str, str]) -> dict:
    return yaml.safe_load(files["deploy/identity/kratos.yml"])


def extend_block(conf: str) -> str:
    block = conf[conf.index('location ~ "^/_mindscape/extend/') :]
    return block[: block.index("\n        }")]


def test_the_idle_timeout_is_kratos_lifespan_and_the_gateway_extends_used_sessions(tmp_path: Path) -> None:
    files = render_platform(platform(tmp_path, {"idle_timeout": "20m", "absolute_timeout": "8h"}))
    session = kratos(files)["session"]
    assert session["lifespan"] == "1200s" and session["cookie"]["persistent"] is False
    script = files["deploy/gateway/auth.js"]
    assert "var IDLE_MS = 1200000;" in script and "var ABSOLUTE_MS = 28800000;" in script
    assert "var STEP_MS = 60000;" in script
    conf = files["deploy/gateway/nginx.conf"]
    block = extend_block(conf)
    assert "internal;" in block and "proxy_method PATCH;" in block and "proxy_pass_request_headers off;" in block
    assert "/admin/sessions/$mindscape_sid/extend" in block and '"identity:4434"' in block
    assert "proxy_cache_valid 200 204 60s;" in block
    assert "keys_zone=mindscape_extends:1m" in conf


def test_changing_the_idle_timeout_changes_what_runs(tmp_path: Path) -> None:
    one = render_platform(platform(tmp_path / "a", {"idle_timeout": "5m", "absolute_timeout": "8h"}))
    two = render_platform(platform(tmp_path / "b", {"idle_timeout": "45m", "absolute_timeout": "8h"}))
    assert kratos(one)["session"]["lifespan"] == "300s" and kratos(two)["session"]["lifespan"] == "2700s"
    assert "proxy_cache_valid 200 204 30s;" in extend_block(one["deploy/gateway/nginx.conf"])
    assert "var IDLE_MS = 2700000;" in two["deploy/gateway/auth.js"]


def test_no_idle_timeout_shorter_than_the_lifetime_nothing_is_extended(tmp_path: Path) -> None:
    files = render_platform(platform(tmp_path, {"idle_timeout": "8h", "absolute_timeout": "8h"}))
    session = kratos(files)["session"]
    assert session["lifespan"] == "28800s" and "persistent" not in session["cookie"]
    assert "/_mindscape/extend/" not in files["deploy/gateway/nginx.conf"]
    assert "mindscape_extends" not in files["deploy/gateway/nginx.conf"]
    assert "var IDLE_MS = 0;" in files["deploy/gateway/auth.js"]


# -- the rest of security.auth: configured into the identity service, or refused ----------------------


def test_password_policy_token_lifetime_and_audience_reach_the_identity_service(tmp_path: Path) -> None:
    files = render_platform(
        platform(
            tmp_path,
            password={"min_length": 20, "identifier_similarity_check": False},
            jwt={"audience": "orders", "access_token_ttl": "2m", "issuer": "https://shop.example.com"},
        )
    )
    config = kratos(files)
    password = config["selfservice"]["methods"]["password"]["config"]
    assert password["min_password_length"] == 20 and password["identifier_similarity_check_enabled"] is False
    assert config["session"]["whoami"]["tokenizer"]["templates"]["mindscape"]["ttl"] == "2m"
    claims = files["deploy/identity/claims.jsonnet"]
    assert 'aud: "orders"' in claims and 'iss: "https://shop.example.com"' in claims


def test_second_factors_are_switched_on_as_listed(tmp_path: Path) -> None:
    methods = kratos(render_platform(platform(tmp_path / "a")))["selfservice"]["methods"]
    assert methods["totp"]["enabled"] and methods["lookup_secret"]["enabled"] and "webauthn" not in methods
    files = render_platform(
        platform(tmp_path / "b", mfa={"methods": ["webauthn"]}, jwt={"issuer": "https://shop.example.com:8443/api"})
    )
    methods = kratos(files)["selfservice"]["methods"]
    assert not methods["totp"]["enabled"] and not methods["lookup_secret"]["enabled"]
    rp = methods["webauthn"]["config"]["rp"]
    assert methods["webauthn"]["enabled"] and methods["webauthn"]["config"]["passwordless"] is False
    assert rp == {"display_name": "shop", "id": "shop.example.com", "origins": ["https://shop.example.com:8443"]}


REFUSED = {
    "sms": ({"mfa": {"methods": ["totp", "sms"]}}, "security.auth.mfa.methods[1]: sms is not offered"),
    "no RS256": ({"jwt": {"algorithms": ["ES256"]}}, "security.auth.jwt.algorithms: the identity service signs"),
    "refresh tokens": ({"jwt": {"refresh_token_ttl": "7d"}}, "security.auth.jwt.refresh_token_ttl: there are no"),
    "sessions per user": ({"sessions": {"max_per_user": 3}}, "security.auth.sessions.max_per_user: the identity"),
    "a tiny idle timeout": (
        {"sessions": {"idle_timeout": "3s", "absolute_timeout": "1h"}},
        "security.auth.sessions.idle_timeout: at least 5s",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_identity_service_cannot_do_is_refused(tmp_path: Path, case: str) -> None:
    from mindscape_ops.errors import ConfigError

    auth, expected = REFUSED[case]
    with pytest.raises(ConfigError) as caught:
        platform(tmp_path, **auth)
    assert [problem for problem in caught.value.problems if expected in problem], caught.value.problems


def test_a_login_ui_gets_its_pages_the_browsers_url_and_the_relying_party(tmp_path: Path) -> None:
    without = kratos(render_platform(platform(tmp_path / "a")))
    assert without["serve"]["public"]["base_url"] == "http://127.0.0.1:4433/"
    assert "ui_url" not in without["selfservice"]["flows"]["login"] and "error" not in without["selfservice"]["flows"]
    data_platform = platform(tmp_path / "b", mfa={"methods": ["totp", "webauthn"]})
    identity = data_platform.services.identity.model_copy(update={"ui_url": "https://shop.example.com/account/"})
    files = render_platform(
        data_platform.model_copy(update={"services": data_platform.services.model_copy(update={"identity": identity})})
    )
    config = kratos(files)
    flows = config["selfservice"]["flows"]
    pages = {name: flows[name]["ui_url"] for name in ("error", "login", "registration", "settings", "recovery")}
    assert pages["login"] == "https://shop.example.com/account/login"
    assert pages["error"] == "https://shop.example.com/account/error" and flows["verification"]["ui_url"]
    assert config["serve"]["public"]["base_url"] == "https://shop.example.com/_mindscape/identity/"
    assert "https://shop.example.com/" in config["selfservice"]["allowed_return_urls"]
    rp = config["selfservice"]["methods"]["webauthn"]["config"]["rp"]
    assert rp["id"] == "shop.example.com" and rp["origins"] == ["https://shop.example.com"]
    script = files["deploy/gateway/auth.js"]
    assert 'var LOGIN_URL = "https://shop.example.com/account/login";' in script
