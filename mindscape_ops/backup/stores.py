"""Where backups are kept: a folder (`backups.local.dir`) or an S3 bucket (`backups.s3`).

A store only moves named objects; an object appears whole or not at all (locally: written
as `<name>.partial`, renamed when complete; on S3: a multipart upload completes or aborts).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mindscape_ops.workspace.files import atomic_write, cannot_write

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

PARTIAL = ".partial"
CHUNK = 1 << 20
FLUSH_EVERY = 32 << 20


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
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        with open(self.directory / name, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def read_small(self, name: str) -> bytes | None:
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None

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


def open_store(project: Project) -> Store:
    """`backups.s3` when set, else `backups.local.dir` under the project root."""
    backups = project.platform.backups
    if backups.s3 is not None:
        from mindscape_ops.backup.s3 import S3Store

        return S3Store(backups.s3)
    rel = str(backups.local.dir)
    return LocalStore(project.root / rel, f"{rel}/")
