"""platform.yaml: the models and the loader."""

from .loader import LoadedPlatform, dotted, load
from .models import Platform

__all__ = ["LoadedPlatform", "Platform", "dotted", "load"]
