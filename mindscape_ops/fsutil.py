"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import OperationFailed


def atomic_write(path: Path, text: str | bytes, mode: int | None = None) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_text(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def cannot_write(path: Path | str, exc: OSError, verb: str = "write") -> OperationFailed:
    """An OSError from writing `path`, as the failure a user can act on."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        hint = f"something else is in the way at {path} (or one of its folders): move it aside, then run again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"make {Path(path).parent} writable for this user, then run again"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some disk space, then run again"
    else:
        hint = None
    return OperationFailed(f"cannot {verb} {path}: {reason}", hint)
