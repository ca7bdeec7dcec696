"""Encryption of backups at rest (not configured yet: every backup is stored as it came)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project


def key_for(project: Project) -> bytes | None:
    return None


def encrypt(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    raise NotImplementedError


def decrypt(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    raise NotImplementedError
