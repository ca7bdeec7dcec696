"""Readiness as strategy objects: is a service *really* ready, checked from the host through
its published port (not by a log line: docker-library/postgres#146, where the init-time
server answers before the real one)?

Each probe makes one attempt and raises `NotReady` with what it saw; `wait_until_ready`
polls it with the service's health interval until its timeout.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass

from mindscape_ops.services.spec import Probe


class NotReady(Exception):
    """One attempt failed; the message says what was seen (it ends up in the timeout error)."""


@dataclass(frozen=True)
class Credentials:
    user: str = ""
    password: str = ""
    database: str = ""


def check_postgres(host: str, port: int, creds: Credentials) -> None:
    import psycopg

    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=creds.user,
            password=creds.password,
            dbname=creds.database,
            connect_timeout=2,
            autocommit=True,
        ) as conn:
            conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        raise NotReady(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__) from None


def check_redis(host: str, port: int, creds: Credentials) -> None:
    import redis

    client = redis.Redis(
        host=host, port=port, password=creds.password or None, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        if not client.ping():
            raise NotReady("no PONG")
        loading = client.info("persistence").get("loading")
        if loading not in (0, "0"):
            raise NotReady("still loading its dataset")
    except redis.RedisError as exc:
        raise NotReady(str(exc) or type(exc).__name__) from None
    finally:
        client.close()


def check_http(host: str, port: int, path: str, expect: str = "") -> None:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read(1 << 20).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise NotReady(f"GET {path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise NotReady(f"GET {path} answered {response.status}")
    if expect and expect not in body:
        raise NotReady(f"GET {path} does not show {expect!r} yet")


def probe_once(probe: Probe, host: str, port: int, creds: Credentials) -> None:
    if probe.kind == "postgres":
        check_postgres(host, port, creds)
    elif probe.kind == "redis":
        check_redis(host, port, creds)
    else:
        check_http(host, port, probe.path, probe.expect)


@dataclass(frozen=True)
class Wait:
    timeout: float
    interval: float
    start_period: float = 0.0


def wait_until_ready(
    attempt: Callable[[], None],
    wait: Wait,
    still_alive: Callable[[], str | None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll `attempt` until it passes; return seconds waited. `still_alive` returns a reason
    when the container has died, which ends the wait at once. Raises NotReady on timeout."""
    started = clock()
    deadline = started + wait.start_period + wait.timeout
    last = "no answer yet"
    while True:
        try:
            attempt()
            return clock() - started
        except NotReady as exc:
            last = str(exc)
        dead = still_alive()
        if dead:
            raise NotReady(dead)
        if clock() >= deadline:
            raise NotReady(f"not ready after {wait.start_period + wait.timeout:g}s; last check: {last}")
        sleep(wait.interval)
