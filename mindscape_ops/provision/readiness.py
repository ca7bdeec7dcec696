"""Waiting for readiness: is a service *really* ready, checked from the host through its
published port (not by a log line: docker-library/postgres#146, where the init-time server
answers before the real one)?

Each service's probe (services/contract.py `Probe`, implemented in its module) makes one
attempt and raises `NotReady` with what it saw; `wait_until_ready` polls it with the service's
health interval until its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mindscape_ops.services.contract import Credentials, NotReady, Wait, check_http

__all__ = ["Credentials", "NotReady", "Wait", "check_http", "wait_until_ready"]


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
