"""platform.yaml: the models and the loader."""

from mindscape_ops.config.loader import LoadedPlatform, dotted, load
from mindscape_ops.config.models import Platform

__all__ = ["LoadedPlatform", "Platform", "dotted", "load"]
