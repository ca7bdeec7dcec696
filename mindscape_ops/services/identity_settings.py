"""What security.auth asks of the identity service: how its sessions are kept (SessionTiming:
the idle timeout Kratos lacks, made of its lifespan and the gateway's extensions; the templates
ask through `Identity.timing`), and what it cannot do, refused as problems of platform.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import Problem


@dataclass(frozen=True)
class SessionTiming:
    """Kratos has a session lifespan and an admin call that extends a session by it, but no idle
    timeout. So, with an idle timeout shorter than the absolute one, a session lives `idle`
    seconds (Kratos' `session.lifespan`) unless it is used: the gateway extends a session it lets
    through (PATCH /admin/sessions/{id}/extend) once it has less than `idle - step` left, at most
    once per `step` per session (nginx caches the call), and refuses one issued more than
    `absolute` seconds ago. A session unused for `idle` seconds is refused by Kratos itself;
    one unused for `idle - step` to `idle` seconds may be refused already (it was last extended
    up to `step` before its last use). `idle` 0: no idle timeout (it is the absolute one), the
    lifespan is `absolute` and nothing is extended."""

    lifespan: int
    idle: int
    absolute: int
    step: int


def session_timing(idle: float, absolute: float) -> SessionTiming:
    """Pure: the step is a tenth of the idle timeout, 1 s to 1 min."""
    idle_s, absolute_s = max(1, int(idle)), max(1, int(absolute))
    if idle_s >= absolute_s:
        return SessionTiming(lifespan=absolute_s, idle=0, absolute=absolute_s, step=0)
    return SessionTiming(lifespan=idle_s, idle=idle_s, absolute=absolute_s, step=max(1, min(60, idle_s // 10)))


AUTH = ("security", "auth")


def problems(platform: Platform) -> list[Problem]:
    """security.auth is its configuration: what it cannot do is refused, not left in policy.json."""
    auth = platform.security.auth
    found: list[Problem] = [
        (
            (*AUTH, "mfa", "methods", n),
            "sms is not offered by the identity service (Ory Kratos sends no text messages here); "
            "use totp, lookup_secret or webauthn",
        )
        for n, method in enumerate(auth.mfa.methods)
        if method == "sms"
    ]
    if "RS256" not in auth.jwt.algorithms:
        found.append(
            (
                (*AUTH, "jwt", "algorithms"),
                "the identity service signs its tokens with RS256 (the key in .mindscape/identity/jwks.json); "
                "list RS256, or the application would refuse every token",
            )
        )
    # set on purpose, they would say something that nothing does with the identity service
    if "refresh_token_ttl" in auth.jwt.model_fields_set:
        found.append(
            (
                (*AUTH, "jwt", "refresh_token_ttl"),
                "there are no refresh tokens with the identity service (the gateway mints a token per request "
                "from the session: sessions.idle_timeout and absolute_timeout bound it); remove it",
            )
        )
    if "max_per_user" in auth.sessions.model_fields_set:
        found.append(
            (
                (*AUTH, "sessions", "max_per_user"),
                "the identity service (Ory Kratos 1.3) cannot limit the sessions of a user; remove it "
                "(`mindscape auth disable` ends all of a user's sessions)",
            )
        )
    timing = platform.services.identity.timing(auth.sessions)
    if timing.idle and timing.idle < MIN_IDLE:
        found.append(
            (
                (*AUTH, "sessions", "idle_timeout"),
                f"at least {MIN_IDLE}s with the identity service (the gateway extends a used session a step at a time)",
            )
        )
    return found


MIN_IDLE = 5
