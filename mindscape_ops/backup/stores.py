"""Where backups are kept: a folder (`backups.local.dir`) or an S3 bucket (`backups.s3`).

A store only moves named objects; an object appears whole or not at all (locally: written
as `<name>.partial`, renamed when complete; on S3: a multipart upload completes or aborts).

Each project has its own space in it: `<dir>/<project>/` or `s3://bucket/<prefix><project>/`,
so projects sharing a bucket (or a folder) never see, prune or restore each other's backups.
Versions before that wrote every project's backups straight into `<dir>/` or `<prefix>`: that
shared space is still read (`legacy_store`), and a backup there counts as a project's only
when its manifest names that project.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mindscape_ops.adapters.files import atomic_write, cannot_write
from mindscape_ops.errors import BackupUnreadable

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

PARTIAL = ".partial"
SMALL_LIMIT = 1 << 20  # a manifest or verification record is a few KiB
CHUNK = 1 << 20
FLUSH_EVERY = 32 << 20


class ReadFailed(BackupUnreadable):
    """The store could not give a backup's bytes (an I/O error, a connection cut): says nothing
    about the backup itself."""


class Store(Protocol):
    where: str  # for messages: a folder or s3://bucket/prefix

    def check(self) -> None: ...  # usable at all (before any byte of a dump is stored)
    def upload(self, name: str, chunks: Iterable[bytes], estimate: int | None = None) -> None: ...
    def write_small(self, name: str, data: bytes) -> None: ...
    def read(self, name: str) -> Iterator[bytes]: ...
    def read_small(self, name: str) -> bytes | None: ...
    def names(self) -> dict[str, float]: ...  # every object: name -> modified (epoch seconds)
    def delete(self, name: str) -> None: ...


class LocalStore:
    def __init__(self, directory: Path, shown: str) -> None:
        self.directory = directory
        self.where = shown

    def _ensure(self) -> None:
        try:
            self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise cannot_write(self.directory, exc, "create") from None

    def check(self) -> None:
        self._ensure()

    def upload(self, name: str, chunks: Iterable[bytes], estimate: int | None = None) -> None:
        self._ensure()
        target = self.directory / name
        partial = target.with_name(target.name + PARTIAL)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                with _Flusher(fd) as flusher:
                    for chunk in chunks:
                        handle.write(chunk)
                        flusher.wrote(len(chunk))
                handle.flush()
                os.fsync(fd)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise cannot_write(target, exc) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def write_small(self, name: str, data: bytes) -> None:
        self._ensure()
        try:
            atomic_write(self.directory / name, data, mode=0o600)
        except OSError as exc:
            raise cannot_write(self.directory / name, exc) from None

    def read(self, name: str) -> Iterator[bytes]:
        try:
            with open(self.directory / name, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise _read_failed(self.directory / name, exc) from None

    def read_small(self, name: str) -> bytes | None:
        """A manifest or record: a regular file, read up to SMALL_LIMIT bytes (a FIFO or a huge file
        under that name must not hang or exhaust mindscape: it reads as damaged)."""
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as file:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return b""
                data = file.read(SMALL_LIMIT + 1)
                return b"" if len(data) > SMALL_LIMIT else data
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _read_failed(self.directory / name, exc) from None

    def names(self) -> dict[str, float]:
        if not self.directory.is_dir():
            return {}
        found = {}
        for entry in os.scandir(self.directory):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file():
                    found[entry.name] = entry.stat().st_mtime
        return found

    def delete(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)


class _Flusher:
    """Flushes what was written to the disk in the background, every FLUSH_EVERY bytes, while
    the stream goes on: the fsync that ends the upload then has only the tail left to write
    (it took 0.5 s per 200 MB at the end otherwise, with the dump stalled meanwhile)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pending = fd, 0
        self.kick, self.stopping = threading.Event(), False
        self.thread = threading.Thread(target=self._run, name="flush", daemon=True)

    def __enter__(self) -> _Flusher:
        self.thread.start()
        return self

    def wrote(self, size: int) -> None:
        self.pending += size
        if self.pending >= FLUSH_EVERY:
            self.pending = 0
            self.kick.set()

    def _run(self) -> None:
        while True:
            self.kick.wait()
            self.kick.clear()
            if self.stopping:
                return
            with contextlib.suppress(OSError):  # the final fsync reports what matters
                os.fdatasync(self.fd)

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        self.kick.set()
        self.thread.join()


def _read_failed(path: Path, exc: OSError) -> ReadFailed:
    return ReadFailed(
        f"cannot read {path}: {exc.strerror or exc}", "check the disk and that path's permissions, then run again"
    )


def open_store(project: Project, owner: str | None = None) -> Store:
    """The space of project `owner` (default: this one) in `backups.s3` when set, else in
    `backups.local.dir` under the project root."""
    owner = owner or project.platform.project
    backups = project.platform.backups
    if backups.s3 is not None:
        from mindscape_ops.backup.s3 import S3Store

        return S3Store(backups.s3, f"{backups.s3.prefix}{owner}/")
    rel = str(backups.local.dir)
    return LocalStore(project.root / rel / owner, f"{rel}/{owner}/")


def legacy_store(project: Project) -> Store:
    """The space every project shared before each got its own (read, never written)."""
    backups = project.platform.backups
    if backups.s3 is not None:
        from mindscape_ops.backup.s3 import S3Store

        return S3Store(backups.s3)
    rel = str(backups.local.dir)
    return LocalStore(project.root / rel, f"{rel}/")
