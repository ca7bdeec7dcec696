"""mindscape: bootstrap a service platform from one platform.yaml."""

__version__ = "0.1.0"
