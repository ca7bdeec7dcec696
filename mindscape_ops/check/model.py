"""A gate, its result, and the runner: every gate in its own thread with its own timeout, so
a run takes about as long as its slowest gate. Pure apart from the threads; no I/O here.

A gate's `run` returns a message when its condition holds, raises `Failed` (with what was
seen and, when it knows better than the gate's own remedy, what to do) or `Skipped` (with a
reason). Anything else it raises is a failure too: a gate that cannot run says why and
counts as failing.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# A gate and its exceptions belong to the services' contract: a service module brings its gates.
from mindscape_ops.services.contract import DEFAULT_TIMEOUT_S, GROUPS, Failed, Gate, Severity, Skipped

__all__ = ["DEFAULT_TIMEOUT_S", "GROUPS", "Failed", "Gate", "Result", "Severity", "Skipped", "Status"]


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    id: str
    group: str
    status: Status
    severity: Severity
    message: str
    remedy: str  # empty unless it failed
    duration_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    @property
    def blocking(self) -> bool:
        return self.status is Status.FAIL and self.severity == "error"


def select(gates: Iterable[Gate], only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Gate]:
    """The gates of the `only` groups (all when empty), minus the `skip` groups."""
    only, skip = set(only), set(skip)
    return [g for g in gates if (not only or g.group in only) and g.group not in skip]


def unknown_groups(names: Iterable[str]) -> list[str]:
    return sorted(set(names) - set(GROUPS))


def exit_code(results: Iterable[Result]) -> int:
    """2 when platform.yaml is invalid (config.valid failed: nothing else could be checked), as
    every command exits on it; 1 when another error-severity gate failed; warnings and skips
    never fail a run."""
    results = list(results)
    if any(r.id == "config.valid" and r.status is Status.FAIL for r in results):
        return 2
    return 1 if any(r.blocking for r in results) else 0


def outcome(gate: Gate, context: Any) -> tuple[Status, str, str]:
    """Run one gate: (status, message, remedy). Never raises."""
    try:
        return Status.PASS, gate.run(context), ""
    except Failed as exc:
        return Status.FAIL, exc.message, exc.remedy or gate.remedy
    except Skipped as exc:
        return Status.SKIP, str(exc), ""
    except Exception as exc:  # noqa: BLE001 - any other error: the gate could not run
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        hint = getattr(exc, "hint", None)
        return Status.FAIL, f"could not run: {message}", hint or gate.remedy


def run_gates(
    gates: list[Gate],
    context: Any,
    redact: Callable[[str], str] = lambda text: text,
    clock: Callable[[], float] = time.monotonic,
) -> list[Result]:
    """Run every gate at once, each in a daemon thread (a gate stuck past its timeout is left
    behind, never waited for), and return the results in the gates' order. `redact` is
    applied to every message and remedy: no secret value leaves a gate."""
    found: dict[str, tuple[Status, str, str, int]] = {}

    def work(gate: Gate) -> None:
        started = clock()
        status, message, remedy = outcome(gate, context)
        found[gate.id] = (status, message, remedy, round((clock() - started) * 1000))

    started = clock()
    threads = [threading.Thread(target=work, args=(gate,), daemon=True, name=gate.id) for gate in gates]
    for thread in threads:
        thread.start()
    results = []
    for gate, thread in zip(gates, threads, strict=True):
        thread.join(max(0.0, started + gate.timeout - clock()))
        status, message, remedy, took = found.get(gate.id) or (
            Status.FAIL,
            f"did not finish within {gate.timeout:g}s",
            gate.remedy,
            round(gate.timeout * 1000),
        )
        results.append(Result(gate.id, gate.group, status, gate.severity, redact(message), redact(remedy), took))
    return results


def by_group(results: Iterable[Result]) -> Mapping[str, list[Result]]:
    """Results grouped by area, areas in the order of GROUPS, gates in the order given."""
    grouped: dict[str, list[Result]] = {}
    for result in sorted(results, key=lambda r: _group_rank(r.group)):
        grouped.setdefault(result.group, []).append(result)
    return grouped


def _group_rank(group: str) -> int:
    return GROUPS.index(group) if group in GROUPS else len(GROUPS)
