"""`status`: one row per service, JSON-ready and secret-free, with the answer to "is it ready?".

Ready is, in this order: Docker's healthcheck when it has spoken (healthy or unhealthy); the
proof `up` left for this very container start (provision/proof.py), while Docker still says
"starting"; else a probe now, by the service's own protocol.

Two paths. The quick one loads no model: when nothing `up` depends on has moved since the
last full `up` (the no-op key of provision/noop.py), "up to date" is the containers' config
labels against what that `up` recorded: one listing of containers, one of images, one
inspect per running container. Otherwise (or when a service would need a probe the quick path
cannot make) the full path plans against platform.yaml, as `plan` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from mindscape_ops.provision import proof

DEFAULT_UP = {"services": [], "wait": True, "timeout": None}  # the options of a plain `up`
Prober = Callable[[str], bool | None]  # service -> ready now? (None: cannot tell here)


class _NeedsFullPath(Exception):
    pass


def row(
    service: str,
    observed: Any,
    up_to_date: bool | None,
    image: str | None,
    engine: Any,
    proofs: dict[str, dict[str, str]],
    prober: Prober,
) -> dict[str, Any]:
    """A service's row; `observed`: its container (None when there is none)."""
    found: dict[str, Any] = {
        "service": service,
        "container": observed.name if observed else None,
        "state": observed.state if observed else "not created",
        "health": observed.health if observed else None,
        "ready": False,
        "ready_by": None,
        "ports": list(observed.ports) if observed else [],
        "image": (observed.image if observed else None) or image,
        "started_at": None,
        "up_to_date": up_to_date,
    }
    if observed is None or not observed.running:
        return found
    state = engine.state(observed.container_id)
    found["started_at"] = _started_at(state)
    if observed.health in ("healthy", "unhealthy"):
        found["ready"], found["ready_by"] = observed.health == "healthy", "healthcheck"
    elif proof.matches(observed, state, proofs.get(service)):
        found["ready"], found["ready_by"] = True, "up"
    else:
        found["ready"], found["ready_by"] = prober(service), "probe"
    return found


def _started_at(state: dict[str, Any]) -> str | None:
    text = state.get("StartedAt") or ""
    if not text or text.startswith("0001"):
        return None
    # Docker gives nanoseconds; keep seconds, ISO 8601.
    return datetime.fromisoformat(text[:19] + "+00:00").isoformat()


def quick(files: list[Path]) -> tuple[str, list[dict[str, Any]]] | None:
    """The project's name and rows without the model, or None when the full path must answer."""
    from mindscape_ops.adapters.engine_socket import reader
    from mindscape_ops.errors import MindscapeError
    from mindscape_ops.provision import noop
    from mindscape_ops.provision.convergence import LABEL_CONFIG_HASH

    cache, state = noop.cached(files, DEFAULT_UP)
    if cache is None:
        return None
    try:
        services: dict[str, dict[str, Any]] = cache["services"]
        engine = reader()  # the light client: no Docker SDK on this path
        observed = engine.containers(cache["project"])
        if set(observed) - set(services):
            return None  # a container the platform no longer has: the full path names it
        image_ids = engine.image_ids(sorted({s["image"] for s in services.values()}))

        def prober(service: str) -> bool | None:
            if not noop.probe_http(services[service].get("probe")):
                raise _NeedsFullPath
            return noop.http_ready(services[service]["probe"])

        rows = []
        for name, expected in services.items():
            seen = observed.get(name)
            same = (
                seen is not None
                and seen.labels.get(LABEL_CONFIG_HASH) == expected["hash"]
                and image_ids.get(expected["image"]) == expected["image_id"]
            )
            rows.append(row(name, seen, same, expected["image"], engine, proof.read(state), prober))
        return cache["project"], rows
    except (_NeedsFullPath, KeyError, TypeError, AttributeError):
        return None
    except MindscapeError:
        return None  # the full path says what is wrong, properly


def full(project: Any, engine: Any, actions: list[Any], prober: Prober) -> list[dict[str, Any]]:
    """The rows from a plan (provision/lifecycle.status makes it)."""
    from mindscape_ops.provision.convergence import Kind

    proofs = proof.read(project.workspace.read_state())
    rows = []
    for action in actions:
        gone = action.kind is Kind.REMOVE
        up_to_date = None if gone else action.kind in (Kind.UNCHANGED, Kind.START)
        image = action.desired.spec.image if action.desired else None
        probe = (lambda service: None) if gone else prober
        found = row(action.service, action.observed, up_to_date, image, engine, proofs, probe)
        if gone:
            found["state"] = f"{action.observed.state} (no longer in platform.yaml)"
            found["ready"] = None
        rows.append(found)
    return rows


def failing(rows: list[dict[str, Any]]) -> list[str]:
    """Enabled services not running or not ready (`status` exits 1 for these)."""
    return [r["service"] for r in rows if r["ready"] is not None and not (r["state"] == "running" and r["ready"])]
