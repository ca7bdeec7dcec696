"""Files: writes that never leave a half-written file behind, and content digests."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from mindscape_ops.errors import OperationFailed


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


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> None:
    """A derived file (a secret file, an ACL, an init script) written only when its text moves:
    an unchanged file keeps its mtime, so nothing that watches it sees a change. Mode 0644 by
    default: containers' unprivileged users read these; .mindscape/ itself is 0700."""
    try:
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, text, mode=mode)
    except OSError as exc:
        raise cannot_write(path, exc) from None


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


def content_digest(root: Path, source: str, overlay: dict[str, str | None] | None = None) -> str:
    """sha256 of a mounted file, or of every file under a mounted folder (names and contents).
    `overlay` maps project paths to the text they are about to have (None: about to go), so
    `plan` and `status` judge a container by the files `up` would render, not those on disk."""
    overlay = overlay or {}
    base = root / source
    if base.is_dir() or any(path.startswith(f"{source}/") for path in overlay):
        names = {str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()} if base.is_dir() else set()
        names |= {path for path in overlay if path.startswith(f"{source}/")}
    else:
        names = {source}
    digest = hashlib.sha256()
    for name in sorted(names):
        if name in overlay:
            if overlay[name] is None:
                continue
            data = overlay[name].encode()
        else:
            path = root / name
            data = path.read_bytes() if path.is_file() else b"<missing>"
        digest.update(name.removeprefix(source).encode() + b"\0" + data + b"\0")
    return digest.hexdigest()
