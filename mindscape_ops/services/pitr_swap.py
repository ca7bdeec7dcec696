"""A point-in-time restore's swap (backup/physical_swap.py) interrupted, found and settled.

The swap stops the live database's container, renames its data directory aside
(`pgdata.replaced-STAMP`) and the restored one (`pgdata.restore-STAMP`) in its place, starts
the container and waits for it to answer. Just before it stops the container it writes a journal
(.mindscape/pitr-swap.json), removed once the container answers on one of the two (or the swap
was undone). A journal found by the next command that takes the project's lock (so the one that
wrote it is gone: a kill -9, a lost terminal) means the swap was cut short somewhere in that
window. `settle` looks at the data volume (through the live container, or a helper one when it is
stopped), finishes the rename when it was cut between its two halves, so that Postgres never
starts on a volume without its data directory (the image would make an empty one), removes the
restore's scratch container and unswapped copy, and says which data the database is on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mindscape_ops.adapters.docker import ContainerRequest
from mindscape_ops.errors import OperationFailed
from mindscape_ops.services import pitr

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

JOURNAL = "pitr-swap.json"  # in .mindscape/
LABEL = "io.mindscape.pitr-restore-of"  # on a scratch or helper container: the live container it serves
ANSWER_TIMEOUT = 120.0  # seconds the live container may take to answer on the data swapped in


def binds_of(details: dict) -> dict[str, dict[str, str]]:
    """Pure: the live container's binds (`source:target[:mode]`) as the engine's create takes them."""
    found = {}
    for bind in details.get("HostConfig", {}).get("Binds") or []:
        source, target, *rest = bind.split(":")
        found[source] = {"bind": target, "mode": rest[0] if rest else "rw"}
    return found


def helper_request(details: dict, name: str, live: str) -> ContainerRequest:
    """A container of the live one's image that mounts what it mounts and only sleeps."""
    networks = list(details.get("NetworkSettings", {}).get("Networks") or {})
    return ContainerRequest(
        name=name,
        image=details["Config"]["Image"],
        command=["sleep", "infinity"],
        user="",
        environment={},
        labels={LABEL: live},
        network=networks[0] if networks else "bridge",
        alias=name,
        container_port=5432,
        bind="127.0.0.1",
        host_port=0,
        binds=binds_of(details),
        healthcheck=None,
        extra_hosts={"host.docker.internal": "host-gateway"},
        log_options={},
    )


def write_journal(project: Project, live: str, stamp: str) -> None:
    path = project.workspace.ensure_dir() / JOURNAL
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"live": live, "stamp": stamp}) + "\n")
    partial.replace(path)


def read_journal(project: Project) -> dict | None:
    try:
        found = json.loads((project.workspace.dir / JOURNAL).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and {"live", "stamp"} <= set(found) else None


def clear_journal(project: Project) -> None:
    (project.workspace.dir / JOURNAL).unlink(missing_ok=True)


def paths(stamp: str) -> dict[str, str]:
    return {
        "live": pitr.PGDATA,
        "restored": f"{pitr.PGDATA}.restore-{stamp}",
        "kept": f"{pitr.PGDATA}.replaced-{stamp}",
        "failed": f"{pitr.PGDATA}.failed-{stamp}",
    }


@dataclass(frozen=True)
class Settlement:
    move: str | None  # the directory renamed to the live one ("kept" or "restored"), if any
    on: str  # which data the database is on: "old" or "restored"


def decide(present: set[str]) -> Settlement:
    """Pure: from the directories present ("live", "kept", "restored", "failed"), what to rename
    so the live data directory exists, and which data that is. The swap renames live->kept then
    restored->live; its undo live->failed then kept->live: a cut between the halves leaves no live
    directory, and is finished (the undo's back to the old data, the swap's on to the restored)."""
    if "live" in present:
        return Settlement(None, "restored" if "kept" in present else "old")
    if "kept" in present and "failed" in present:
        return Settlement("kept", "old")
    if "restored" in present:
        return Settlement("restored", "restored")
    if "kept" in present:
        return Settlement("kept", "old")
    raise OperationFailed(
        f"the data volume has no data directory ({pitr.PGDATA}) nor any a restore set aside",
        "restore it from a backup (`mindscape backup list`)",
    )


class _Volume:
    """Commands on the data volume: in the live container when it runs, else in a helper."""

    def __init__(self, engine, live: str, details: dict, stamp: str) -> None:
        self.engine, self.live = engine, live
        self.running = bool(details.get("State", {}).get("Running"))
        self.helper = None if self.running else f"{live}-settle-{stamp}"
        if self.helper is not None:
            engine.remove(self.helper, stop_timeout=0)  # one a killed settle left
            engine.create(helper_request(details, self.helper, live))
            engine.start(self.helper)

    def run(self, argv: list[str]) -> str:
        return pitr.run(self.engine, self.helper or self.live, argv, user="root")

    def close(self) -> None:
        if self.helper is not None:
            self.engine.remove(self.helper, stop_timeout=0)


def settle(project: Project, engine, start: bool = True) -> str | None:
    """What an interrupted swap left, settled (see the module's doc); what was found and done,
    or None when no swap was interrupted. With `start`, the live container is started if it is
    stopped and must answer: on restored data that does not, the swap is undone. Without it
    (`up`, which starts the container itself), only the directories are put right."""
    journal = read_journal(project)
    if journal is None:
        return None
    live, stamp = str(journal["live"]), str(journal["stamp"])
    details = engine.container_by_name(live)
    if details is None:
        raise OperationFailed(
            f"a restore's swap was interrupted, and {live} no longer exists",
            f"run `mindscape up {pitr.SERVICE}`: it creates it on the data volume as the swap left it",
        )
    for name in engine.names_labelled(LABEL, live):  # the restore's scratch container
        engine.remove(name, stop_timeout=0)
    where = paths(stamp)
    volume = _Volume(engine, live, details, stamp)
    try:
        listing = volume.run(["sh", "-c", 'for d; do [ -d "$d" ] && echo "$d"; done; true', "-", *where.values()])
        present = {key for key, path in where.items() if path in listing.split()}
        settlement = decide(present)
        if settlement.move is not None:
            volume.run(["mv", where[settlement.move], where["live"]])
        if "restored" in present and settlement.move != "restored":
            volume.run(["rm", "-rf", where["restored"]])
    finally:
        volume.close()
    on = settlement.on
    if start and not volume.running:
        engine.start(live)
    answers = start and _answers(engine, project, live)
    if start and on == "restored" and not answers:
        engine.stop(live, stop_timeout=60)
        _run_in_helper(engine, live, stamp, ["sh", "-c", 'mv "$1" "$2" && mv "$3" "$1"', "-", *_undo(where)])
        engine.start(live)
        on = "old, the restored data not answering (kept as " + where["failed"] + ")"
    elif answers:
        pitr.wake_checkpointer(engine, live, project.platform)
    clear_journal(project)
    if on == "restored":
        return (
            f"a restore ({stamp}) was interrupted during its swap, after the restored data was swapped in: "
            f"the database is on the restored data; the data it replaced is kept as {where['kept']}"
        )
    if on == "old":
        return (
            f"a restore ({stamp}) was interrupted during its swap, before the restored data was swapped in: "
            "the database is on the data it had; the restored copy was removed"
        )
    return f"a restore ({stamp}) was interrupted during its swap: the database is back on the {on}"


def _undo(where: dict[str, str]) -> list[str]:
    return [where["live"], where["failed"], where["kept"]]


def _run_in_helper(engine, live: str, stamp: str, argv: list[str]) -> None:
    volume = _Volume(engine, live, engine.inspect(live), stamp)
    try:
        volume.run(argv)
    finally:
        volume.close()


def _answers(engine, project: Project, live: str) -> bool:
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while time.monotonic() < deadline:
        try:
            pitr.run(engine, live, pitr.psql(project.platform, "SELECT 1"))
            return True
        except OperationFailed:
            time.sleep(0.2)
    return False
