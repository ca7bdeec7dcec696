"""One changing command at a time per project folder.

Two `mindscape up` at once would both create the project network (leaving two of the same
name) and race on .mindscape/state.json. Every command that changes something holds this lock
(a filelock on .mindscape/lock, released by the OS if the process dies); who holds it is
written beside it, so a second command can say what it waits for.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from mindscape_ops.errors import OperationFailed
from mindscape_ops.workspace.store import Workspace


def _holder(workspace: Workspace) -> str:
    try:
        info = json.loads((workspace.dir / "lock.json").read_text())
        since = datetime.fromtimestamp(float(info["since"])).strftime("%H:%M:%S")
        return f"another `{info['command']}` is running in this project (pid {int(info['pid'])}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another mindscape command is running in this project"


@contextlib.contextmanager
def project_lock(
    workspace: Workspace, command: str, wait: bool = True, notify: Callable[[str], None] = lambda text: None
) -> Iterator[None]:
    """Hold the project lock for `command`. Busy: wait (telling `notify` who holds it), or with
    `wait=False` fail at once."""
    from filelock import FileLock, Timeout

    workspace.ensure_dir()
    lock = FileLock(workspace.dir / "lock", thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(workspace)
        if not wait:
            raise OperationFailed(holder, "wait for it to finish, or run again without --no-wait to wait") from None
        notify(f"{holder}; waiting for it to finish (Ctrl-C to stop)")
        lock.acquire()
    info = workspace.dir / "lock.json"
    try:
        info.write_text(json.dumps({"command": command, "pid": os.getpid(), "since": time.time()}) + "\n")
        yield
    finally:
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()
