"""Waiting for readiness: is a service *really* ready, checked from the host through its
published port (not by a log line: docker-library/postgres#146, where the init-time server
answers before the real one)?

Each service's probe (services/contract.py `Probe`, implemented in its module) makes one
attempt and raises `NotReady` with what it saw; `wait_until_ready` polls it with the service's
health interval until its timeout.
"""

from __future__ import annotations

# The waiting is the services' contract too (a service's start hook waits on another service).
from mindscape_ops.services.contract import Credentials, NotReady, Wait, check_http, wait_until_ready

__all__ = ["Credentials", "NotReady", "Wait", "check_http", "wait_until_ready"]
