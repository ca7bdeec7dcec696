"""Rules that need the whole platform at once. Pure: (platform) -> [(path, message)]."""

from __future__ import annotations

import re

from mindscape_ops.config.kubernetes import image_problems
from mindscape_ops.config.models import Platform
from mindscape_ops.config.monitoring import WATCHDOG_RECEIVER
from mindscape_ops.services import pitr
from mindscape_ops.services.registry import SERVICES

Problem = tuple[tuple[str | int, ...], str]


def check_platform(platform: Platform) -> list[Problem]:
    return [
        *_duplicate_ports(platform),
        *_dependencies(platform),
        *_names(platform),
        *_auth(platform),
        *_deploy_branch(platform),
        *image_problems(platform),
    ]


def _duplicate_ports(platform: Platform) -> list[Problem]:
    """Two services may not publish one port on overlapping addresses: the same address, or
    either of them 0.0.0.0 (every address). 127.0.0.1:7000 and 127.0.0.2:7000 can both be had."""
    problems: list[Problem] = []
    taken: list[tuple[str, int, str]] = []  # (bind, port, service)
    for name, service in platform.services.enabled().items():
        if service.port == "auto":
            continue
        overlapping = (
            other
            for bind, port, other in taken
            if port == service.port and (bind == service.bind or "0.0.0.0" in (bind, service.bind))
        )
        owner = next(overlapping, None)
        if owner:
            problems.append(
                (
                    ("services", name, "port"),
                    f"port {service.port} is already used by services.{owner}; pick another port or use `port: auto`",
                )
            )
        else:
            taken.append((service.bind, service.port, name))
    return problems


def _dependencies(platform: Platform) -> list[Problem]:
    enabled = platform.services.enabled()
    problems: list[Problem] = []
    for service in SERVICES:
        if service.name not in enabled:
            continue
        problems.extend(
            (
                ("services", service.name),
                f"needs services.{need}, which is not enabled; add it or disable {service.name}",
            )
            for need in service.depends_on
            if need not in enabled
        )
        if service.problems:
            problems.extend(service.problems(platform))
    for service in SERVICES:  # rules about a service whether or not it is enabled (what needs it)
        if service.validate:
            problems.extend(service.validate(platform))
    if platform.backups.pitr.enabled:
        problems.extend(_pitr(platform, enabled))
    for index, service in enumerate(platform.backups.services or [] if platform.backups.enabled else []):
        if service not in enabled:
            problems.append((("backups", "services", index), f"{service} is not an enabled service"))
    return problems


def _pitr(platform: Platform, enabled: dict) -> list[Problem]:
    if pitr.SERVICE not in enabled:
        return [(("backups", "pitr", "enabled"), f"archives the WAL of services.{pitr.SERVICE}, which is not enabled")]
    problems: list[Problem] = []
    s3 = platform.backups.s3
    endpoint = str(s3.endpoint_url) if s3 is not None and s3.endpoint_url is not None else None
    if platform.backups.pitr.repository == "s3" and endpoint is not None and not endpoint.startswith("https:"):
        problems.append(
            (
                ("backups", "s3", "endpoint_url"),
                "pgBackRest (2.45) reaches S3 over TLS only, and backups.pitr.repository is s3: "
                "use the endpoint's https:// address",
            )
        )
    if platform.kubernetes is not None and platform.backups.pitr.repository == "local":
        problems.append(
            (
                ("backups", "pitr", "repository"),
                "a local repository (the default) is a folder on this machine, which the cluster's pods cannot "
                "share (Postgres' archiving, the backup CronJobs); use `repository: s3` (with backups.s3) "
                "in the file that sets `kubernetes:`",
            )
        )
    return problems + [
        (("services", pitr.SERVICE, "settings", key), "set by backups.pitr while it is on; remove it here")
        for key in getattr(enabled[pitr.SERVICE], "settings", {})
        if key in pitr.OWNED_SETTINGS
    ]


def _names(platform: Platform) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    targets = [("monitoring", "targets", i, t) for i, t in enumerate(platform.monitoring.targets)]
    targets += [(*path, t) for service in SERVICES if service.app_targets for path, t in service.app_targets(platform)]
    for *path, target in targets:
        if target.name in seen or target.name in platform.services.enabled():
            problems.append(((*path, "name"), f"target name {target.name!r} is used twice; names must be unique"))
        seen[target.name] = target.name
    receivers = [r.name for r in platform.monitoring.receivers]
    for index, name in enumerate(receivers):
        if name in receivers[:index]:
            problems.append((("monitoring", "receivers", index, "name"), f"receiver {name!r} is defined twice"))
    for index, receiver in enumerate(platform.monitoring.receivers):
        path = ("monitoring", "receivers", index)
        if receiver.name == WATCHDOG_RECEIVER:
            problems.append(((*path, "name"), "`watchdog` is the Watchdog's own receiver; set monitoring.watchdog"))
        if receiver.kind in ("slack", "pagerduty") and not receiver.has_secret:
            problems.append(
                (
                    (*path, "secret_env"),
                    f"a {receiver.kind} receiver needs secret_env or secret_file: "
                    "the variable or file holding its webhook URL or routing key",
                )
            )
        if receiver.kind == "webhook" and not receiver.url and not receiver.has_secret:
            # with a secret, its URL is read from a file (url_file): the image must allow it (ServiceDef.validate)
            problems.append(
                ((*path, "url"), "a webhook receiver needs url, or secret_env/secret_file holding a secret URL")
            )
        if receiver.kind == "email" and receiver.has_secret:
            problems.append(
                ((*path, "secret_env"), "the SMTP password is monitoring.smtp.password_env (or password_file)")
            )
        if receiver.kind == "email" and not receiver.to:
            problems.append(((*path, "to"), "an email receiver needs `to`"))
        if receiver.kind == "email" and not platform.monitoring.smtp:
            problems.append(((*path, "kind"), "an email receiver needs monitoring.smtp (host, from): the mail relay"))
    watchdog = platform.monitoring.watchdog
    if watchdog.has_secret and not watchdog.url:
        problems.append((("monitoring", "watchdog", "url"), "a bearer token needs the url it is sent to"))
    return problems


def _auth(platform: Platform) -> list[Problem]:
    problems: list[Problem] = []
    sessions = platform.security.auth.sessions
    if sessions.idle_timeout.seconds > sessions.absolute_timeout.seconds:
        problems.append((("security", "auth", "sessions", "idle_timeout"), "is longer than absolute_timeout"))
    jwt = platform.security.auth.jwt
    if jwt.access_token_ttl.seconds > jwt.refresh_token_ttl.seconds:
        problems.append((("security", "auth", "jwt", "access_token_ttl"), "is longer than refresh_token_ttl"))
    limits = platform.security.limits
    if limits.client_timeout.seconds < 1 or limits.upstream_timeout.seconds < 1:
        problems.append((("security", "limits"), "timeouts must be at least 1s"))
    for name, service in platform.services.enabled().items():
        if service.health.timeout.seconds <= 0:
            problems.append((("services", name, "health", "timeout"), "must be longer than 0s"))
        if service.health.interval.seconds <= 0:
            problems.append((("services", name, "health", "interval"), "must be longer than 0s"))
    return problems


def _deploy_branch(platform: Platform) -> list[Problem]:
    """ci.yml deploys from its own runs on ci.deploy.branch: a branch ci.branches leaves out
    gets no run on a push, so nothing would ever deploy."""
    ci = platform.ci
    if not ci.deploy.enabled or any(_branch_filter(p).fullmatch(ci.deploy.branch) for p in ci.branches):
        return []
    return [
        (
            ("ci", "deploy", "branch"),
            f"{ci.deploy.branch!r} is not among ci.branches {ci.branches}: CI never runs there on a push, "
            "so nothing would deploy; add it to ci.branches or deploy from one of them",
        )
    ]


def _branch_filter(pattern: str) -> re.Pattern[str]:
    """A GitHub branch filter as a regex: `**` matches anything, `*` anything but `/`."""
    parts = re.split(r"(\*\*|\*)", pattern)
    return re.compile("".join(".*" if p == "**" else "[^/]*" if p == "*" else re.escape(p) for p in parts))
