"""Moved to adapters/files.py (the disk is below every layer); kept for the backup modules'
imports until they follow."""

from mindscape_ops.adapters.files import atomic_write, cannot_write, content_digest, sha256_text, write_if_changed

__all__ = ["atomic_write", "cannot_write", "content_digest", "sha256_text", "write_if_changed"]
