"""Host ports: is one free, who holds it, and picking a free one for `port: auto`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mindscape_ops.errors import OperationFailed


def is_free(bind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # like a server would: connections lingering in TIME_WAIT do not make a port taken
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError:
            return False
    return True


def pick_free(bind: str, avoid: set[int]) -> int:
    """A port the kernel says is free now (and that no other service here was given)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((bind, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OperationFailed("could not find a free port on this machine", "free some ports, or set fixed `port:` values")


def process_holding(port: int) -> str | None:
    """The name and pid of the local process listening on `port`, when /proc tells."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            for fd in fds:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                    return f"{name} (pid {pid})"
        except OSError:
            continue
    return None
