"""Byte streams as iterators of chunks: counted and hashed on the way, checked at the end
(adapters/chunks.py reads them as a file where a library wants one)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator

from mindscape_ops.errors import BackupUnreadable

Progress = Callable[[int], None]  # bytes so far


class Corrupt(BackupUnreadable):
    """A stored backup is not what its manifest says."""


class Tally:
    """Counts and hashes (unless not `hashing`) the chunks that pass through `wrap`."""

    def __init__(self, progress: Progress | None = None, every: float = 0.5, hashing: bool = True) -> None:
        self.size = 0
        self.digest = hashlib.sha256()
        self.progress, self.every, self._last = progress, every, 0.0
        self._update = self.digest.update if hashing else lambda chunk: None

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.size += len(chunk)
            self._update(chunk)
            if self.progress is not None and time.monotonic() - self._last >= self.every:
                self._last = time.monotonic()
                self.progress(self.size)
            yield chunk
        if self.progress is not None:
            self.progress(self.size)

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()


def checked(chunks: Iterable[bytes], size: int, sha256: str, what: str) -> Iterator[bytes]:
    """Pass the chunks on, holding the last one back until the whole stream matched `size`
    and `sha256`: a consumer of a corrupt stream never sees it end cleanly (pg_restore then
    fails on a truncated archive, inside its one transaction)."""
    tally = Tally()
    held: bytes | None = None
    for chunk in tally.wrap(chunks):
        if held is not None:
            yield held
        held = chunk
    if tally.size != size or tally.sha256 != sha256:
        raise corrupt(what, size, sha256, tally.size, tally.sha256)
    if held is not None:
        yield held


def corrupt(what: str, size: int, sha256: str, got_size: int, got_sha256: str) -> Corrupt:
    if got_size != size:
        seen = f"{got_size} bytes where its manifest says {size}"
    else:
        seen = f"sha256 {got_sha256[:16]}... where its manifest says {sha256[:16]}..."
    return Corrupt(
        f"{what} is corrupt: {seen}; nothing was touched",
        "use another backup (`mindscape backup list`); this one cannot be trusted",
    )


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Chunks of exactly `size` bytes (the last one shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def large_buffers_back_to_the_os() -> None:
    """A backup allocates and frees buffers all along: stream chunks of 256 KiB to 1 MiB, and
    S3 parts of 5 MiB and more. Left alone, glibc raises its mmap threshold each time a mapped
    buffer is freed, so later parts come from the heap, where freed memory mostly stays in the
    process: its RSS crept up by ~5 MB over a 50 MB upload. Fixed thresholds keep both ends
    cheap: S3 parts (over 4 MiB, M_MMAP_THRESHOLD) are mapped and given back when freed, while
    the stream's chunks come from the heap and are reused, 16 MiB of free heap top kept
    (M_TRIM_THRESHOLD). A threshold as low as glibc's 128 KiB mapped every chunk afresh: the
    kernel zeroed each page on first touch, and a 140 MB dump cost ~60,000 mmap/mremap/munmap
    calls and 1.2 s of system time. Nothing happens where there is no glibc."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 4 << 20)  # -3: M_MMAP_THRESHOLD
        libc.mallopt(-1, 16 << 20)  # -1: M_TRIM_THRESHOLD
