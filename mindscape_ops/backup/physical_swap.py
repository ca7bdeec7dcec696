"""The scratch container of a point-in-time restore (backup/physical.py): it mounts what the
live database's container mounts (the data volume, pgBackRest's configuration and repository),
restores into a new directory of the data volume, recovers it with a Postgres of its own, and
swaps it in for the live data only once that Postgres has promoted and answered.

Until the swap the live data is not touched; if the live container does not come up on the
restored data, the swap is undone. A journal written before the live container is stopped and
removed once it answers lets the next command settle a swap mindscape was killed in
(services/pitr_swap.py). On the way out the scratch container is removed, and so is
the restored directory when it was not swapped in.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from mindscape_ops.errors import OperationFailed
from mindscape_ops.services import pitr, pitr_swap
from mindscape_ops.services.pitr_swap import ANSWER_TIMEOUT

if TYPE_CHECKING:
    from mindscape_ops.backup.context import Context

LOG = "/tmp/mindscape-recovery.log"  # in the scratch container
PROMOTED = ("SELECT pg_is_in_recovery()", "f")  # its WAL replayed to the target, and promoted
USER_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"


def server_options(command: list[str], archive_command: str | None = None) -> str:
    """Pure: the live server's `-c` settings (WAL archiving among them), for pg_ctl's -o, with
    no TCP listener: the restored copy is reached through its socket only. Its archive_command
    replaced by `archive_command` when given (the copy's own data directory as pgBackRest's
    pg1-path: the live one's would fail each push, its new timeline's history file first)."""
    settings = list(command[1:]) if command and command[0] == pitr.SERVER else []
    if archive_command is not None:
        settings = [
            f"archive_command={archive_command}" if arg.startswith("archive_command=") else arg for arg in settings
        ]
    return " ".join(shlex.quote(arg) for arg in [*settings, "-c", "listen_addresses="])


class Scratch:
    def __init__(self, ctx: Context, live: str, stamp: str, purpose: str = "restore") -> None:
        self.ctx, self.live, self.engine = ctx, live, ctx.engine
        self.name, self.stamp = f"{live}-{purpose}-{stamp}", stamp
        self.dir = f"{pitr.PGDATA}.{purpose}-{stamp}"
        self.kept = f"{pitr.PGDATA}.replaced-{stamp}"
        self.swapped = False
        self.stanza = pitr.stanza(ctx.project.platform)
        self.platform = ctx.project.platform

    def __enter__(self) -> Scratch:
        details = self.engine.inspect(self.live)
        self.command = list(details.get("Config", {}).get("Cmd") or [])
        request = pitr_swap.helper_request(details, self.name, self.live)
        self.engine.create(request)
        try:
            self.engine.start(self.name)
        except BaseException:
            self.engine.remove(self.name)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self.swapped:
                self._run(["sh", "-c", 'pg_ctl -D "$1" -m immediate -w stop >/dev/null 2>&1; true', "-", self.dir])
                self._run(["rm", "-rf", self.dir], user="root")
        finally:
            # no grace: its Postgres is stopped, and `sleep` as its first process ignores SIGTERM
            # (a grace period would only be waited out)
            self.engine.remove(self.name, stop_timeout=0)

    def _run(self, argv: list[str], user: str = pitr.OS_USER) -> str:
        return pitr.run(self.engine, self.name, argv, user=user)

    def restore(self, args: list[str]) -> None:
        self._run(["install", "-d", "-o", pitr.OS_USER, "-g", pitr.OS_USER, "-m", "0700", self.dir], user="root")
        try:
            self._run(["pgbackrest", f"--stanza={self.stanza}", f"--pg1-path={self.dir}", "restore", *args])
        except OperationFailed as exc:
            raise OperationFailed(
                f"pgBackRest could not restore from the repository: {exc.message}: the live data is untouched",
                exc.hint or "`mindscape backup verify --physical` checks every file of the repository",
            ) from None

    def recover(self, timeout: float, archive: bool = True) -> int:
        """Start Postgres on the restored copy; it replays WAL to the target and promotes.
        Then it must answer a query in the platform's database: its count of tables (those of
        the system catalogs aside). Without `archive` (a verification), the copy archives
        nothing: its new timeline never reaches the repository. The copy is left running: the
        swap stops it (beside the live one), a verification's is thrown away on the way out."""
        options = server_options(self.command, pitr.archive_command(self.platform, self.dir))
        options += "" if archive else " -c archive_mode=off"
        start = ["pg_ctl", "-D", self.dir, "-l", LOG, "-w", "-t", str(int(timeout)), "-o", options]
        try:
            self._run([*start, "start"])
        except OperationFailed:
            raise OperationFailed(
                f"the restored copy did not start: {self._log_tail()}: the live data is untouched",
                "pick a time in the restorable window (`mindscape backup list`)",
            ) from None

        try:  # it answers, in the platform's database: its count of tables
            return int(pitr.wait_then(self.engine, self.name, self.platform, PROMOTED, USER_TABLES, timeout, self.dir))
        except OperationFailed as exc:
            raise OperationFailed(
                f"the restored copy's promotion did not happen ({exc.message}): {self._log_tail()}: "
                "the live data is untouched",
                "pick a time in the restorable window (`mindscape backup list`)",
            ) from None

    def _log_tail(self) -> str:
        try:
            text = self._run(["tail", "-n", "20", LOG])
        except OperationFailed:
            return "no server log"
        lines = [line for line in text.splitlines() if "FATAL" in line or "ERROR" in line] or text.splitlines()[-1:]
        return lines[-1].strip() if lines else "no server log"

    def swap(self) -> str:
        """Stop the restored copy's Postgres (a clean shutdown) and the live container at once,
        swap the directories by rename, start the live container; undone if it does not answer
        on the restored data. A copy that does not stop cleanly is not swapped in."""
        project = self.ctx.project
        pitr_swap.write_journal(project, self.live, self.stamp)  # a kill from here on: the next command settles it
        try:
            with ThreadPoolExecutor(1) as pool:
                live_stopped = pool.submit(self.engine.stop, self.live, stop_timeout=60)
                try:
                    self._run(["pg_ctl", "-D", self.dir, "-m", "fast", "-w", "stop"])
                finally:
                    live_stopped.result()
            self._run(["sh", "-c", 'mv "$1" "$2" && mv "$3" "$1"', "-", pitr.PGDATA, self.kept, self.dir], user="root")
        except BaseException:
            self.engine.start(self.live)
            pitr_swap.clear_journal(project)
            raise
        self.swapped = True
        self.engine.start(self.live)
        try:  # it answers; then its checkpointer is woken (pitr.WAKE_CHECKPOINTER)
            answering = ("SELECT 1", "1")
            pitr.wait_then(self.engine, self.live, self.platform, answering, pitr.WAKE_CHECKPOINTER, ANSWER_TIMEOUT)
        except OperationFailed as exc:
            self.engine.stop(self.live, stop_timeout=60)
            failed = f"{pitr.PGDATA}.failed-{self.kept.rsplit('-', 1)[-1]}"
            self._run(["sh", "-c", 'mv "$1" "$2" && mv "$3" "$1"', "-", pitr.PGDATA, failed, self.kept], user="root")
            self.engine.start(self.live)
            pitr_swap.clear_journal(project)
            raise OperationFailed(
                f"{self.live} did not answer on the restored data ({exc.message}): the swap was undone, "
                f"the live data is back (the restored copy is kept as {failed})"
            ) from None
        pitr_swap.clear_journal(project)
        return self.kept
