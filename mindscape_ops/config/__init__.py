"""platform.yaml: the models and the loader.

Loaded lazily: the service modules import `config.base` and `config.types` while the models
(which list those services) are still being built, so this package must not import the
models itself until asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindscape_ops.config.loader import LoadedPlatform, dotted, load
    from mindscape_ops.config.models import Platform

__all__ = ["LoadedPlatform", "Platform", "dotted", "load"]


def __getattr__(name: str) -> Any:
    if name in ("LoadedPlatform", "dotted", "load"):
        from mindscape_ops.config import loader

        return getattr(loader, name)
    if name == "Platform":
        from mindscape_ops.config.models import Platform

        return Platform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
