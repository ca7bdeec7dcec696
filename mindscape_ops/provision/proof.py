"""Readiness that `up` proved, remembered so `status` and the no-op `up` need not prove it again.

`up` probes each service by its own protocol until it answers. Docker's healthcheck only
catches up later (its first check runs an interval after start, and says "starting" until
then). Right after a probe passes, `up` notes the container's id and its `State.StartedAt`;
a container restarted since (by its restart policy, by hand) or replaced has another
StartedAt or id, and its proof no longer holds: it is probed again (or Docker's own health
is read, when that says healthy or unhealthy).

The proofs live in .mindscape/state.json under `ready_proof` (no secrets: ids and times).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROOF_KEY = "ready_proof"


def take(engine: Any, container: str, probe: Any) -> dict[str, str] | None:
    """A proof for `container`: its StartedAt read first, then one more probe. Whatever ran
    the probe answered; if it was a later start than the one read, the proof names a start
    that is gone and will simply not hold. None when the container is not running."""
    from mindscape_ops.errors import MindscapeError
    from mindscape_ops.provision.readiness import NotReady

    try:
        state = engine.state(container)
        if not state.get("Running") or state.get("Restarting"):
            return None
        probe()
    except (MindscapeError, NotReady):
        return None
    return {"container": container, "started_at": str(state.get("StartedAt", ""))}


def record(workspace: Any, proofs: Mapping[str, Mapping[str, str] | None]) -> None:
    """Keep the new proofs (None drops a service's old one); the other services' stay, each
    checked against its container when read."""
    if not proofs:
        return
    kept = dict(read(workspace.read_state()))
    for service, proof in proofs.items():
        if proof is None:
            kept.pop(service, None)
        else:
            kept[service] = dict(proof)
    workspace.update_state(**{PROOF_KEY: kept})


def read(state: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The proofs in a state read from disk; entries of the wrong shape are dropped."""
    found = state.get(PROOF_KEY)
    if not isinstance(found, dict):
        return {}
    return {
        service: proof
        for service, proof in found.items()
        if isinstance(proof, dict)
        and isinstance(proof.get("container"), str)
        and isinstance(proof.get("started_at"), str)
        and proof["started_at"]
    }


def holds(engine: Any, observed: Any, proved: Mapping[str, str] | None) -> bool:
    """Is this running container the very start `up` proved ready? One inspect."""
    from mindscape_ops.errors import MindscapeError

    if not proved or not observed.running or proved.get("container") != observed.container_id:
        return False
    try:
        return matches(observed, engine.state(observed.container_id), proved)
    except MindscapeError:
        return False


def matches(observed: Any, state: Mapping[str, Any], proved: Mapping[str, str] | None) -> bool:
    """`state` (the container's inspected State) is the start `proved` names, still running."""
    return (
        proved is not None
        and proved.get("container") == observed.container_id
        and bool(state.get("Running"))
        and not state.get("Restarting")
        and state.get("StartedAt") == proved.get("started_at")
    )
