"""The engine's answers as our types, shared by the SDK adapter (adapters/docker.py) and the
light socket client (adapters/engine_socket.py). Pure: no SDK, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mindscape_ops.adapters.labels import LABEL_SERVICE


@dataclass(frozen=True)
class Observed:
    """A container of this project as the engine reports it."""

    name: str
    service: str
    state: str  # created, running, exited, ...
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    labels: Mapping[str, str] = field(default_factory=dict)
    container_id: str = ""
    image: str = ""  # as created (the list's Image)
    ports: tuple[str, ...] = ()  # published: "127.0.0.1:5432->5432/tcp"

    @property
    def running(self) -> bool:
        return self.state == "running"


def observed(rows: Iterable[dict[str, Any]]) -> dict[str, Observed]:
    """A container listing (GET /containers/json) as this project's containers by service."""
    found: dict[str, Observed] = {}
    for row in rows:
        labels = row.get("Labels") or {}
        service = labels.get(LABEL_SERVICE)
        if service:
            found[service] = Observed(
                name=row["Names"][0].lstrip("/"),
                service=service,
                state=row.get("State", ""),
                health=health_from_status(row.get("Status", "")),
                labels=labels,
                container_id=row["Id"],
                image=row.get("Image", ""),
                ports=tuple(sorted(set(published(row)))),
            )
    return found


def image_ids_by_tag(rows: Iterable[dict[str, Any]], refs: Iterable[str]) -> dict[str, str | None]:
    """Ids of `refs` from an image listing (GET /images/json); None where the listing has no such tag."""
    by_tag = {tag: row["Id"] for row in rows for tag in row.get("RepoTags") or ()}
    return {ref: by_tag.get(ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest") for ref in refs}


def published(row: dict[str, Any]) -> Iterator[str]:
    for port in row.get("Ports") or ():
        if port.get("PublicPort"):
            yield f"{port.get('IP', '')}:{port['PublicPort']}->{port['PrivatePort']}/{port.get('Type', 'tcp')}"


def health_from_status(status: str) -> str | None:
    for word in ("healthy", "unhealthy", "health: starting"):
        if f"({word})" in status:
            return word.replace("health: ", "")
    return None


def line_times(output: bytes) -> list[float]:
    """The Unix times of a container's output lines as the engine gives them with
    `timestamps=1` (each line starts `2026-12-06T07:28:37.123456789Z `), oldest first; the
    8-byte stream headers of a multiplexed answer are skipped (the SDK removes them itself)."""
    times = []
    for line in demultiplexed_text(output).splitlines():
        stamp = line.split(b" ", 1)[0].decode("ascii", "replace")
        seconds = rfc3339_seconds(stamp)
        if seconds is not None:
            times.append(seconds)
    return times


def demultiplexed_text(output: bytes) -> bytes:
    """The payloads of a multiplexed logs answer joined (stdout and stderr alike); any other
    answer (a TTY container's, or the SDK's already joined) as it is."""
    if len(output) < 8 or output[0] not in (0, 1, 2) or output[1:4] != b"\0\0\0":
        return output
    joined, pos = bytearray(), 0
    while pos + 8 <= len(output):
        size = int.from_bytes(output[pos + 4 : pos + 8], "big")
        joined += output[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return bytes(joined)


def rfc3339_seconds(stamp: str) -> float | None:
    """Pure: an RFC 3339 UTC time with up to nanoseconds (the engine's and the log store's)
    as Unix seconds; None when it is not one."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    if not stamp.endswith("Z") or not fraction.isdigit() and fraction:
        return None
    try:
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.timestamp() + (int(fraction[:9].ljust(9, "0")) / 1e9 if fraction else 0.0)
