"""Reading a platform file: only a regular file of sane size, with a clear error otherwise."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mindscape_ops.errors import UsageError

MAX_FILE_BYTES = 1 << 20  # a platform file is a few KB; far past that it is not one


def read_platform_file(path: Path) -> bytes:
    """The bytes of a regular file of sane size. A device (/dev/zero), a FIFO or a socket would
    hang or never end, and a huge file takes the YAML parser minutes: refused, with the reason.
    Opened without blocking, so a FIFO with no writer cannot hang us before the check."""
    name = str(path)
    if not path.exists():
        raise UsageError(
            f"{name}: no such file", "run `mindscape init` to write a starter platform.yaml, or pass -f PATH"
        )
    if path.is_dir():
        raise UsageError(
            f"{name} is a directory, not a platform file", f"pass the file inside it: -f {name}/platform.yaml"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UsageError(
                    f"{name} is not a regular file (a device, pipe or socket)",
                    "pass a YAML file: -f path/to/platform.yaml",
                )
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{name}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(
            f"{name} is larger than {MAX_FILE_BYTES >> 20} MiB; a platform file is a few KB",
            "check that -f names the platform file",
        )
    return data
