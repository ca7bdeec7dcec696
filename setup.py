"""The package list, found rather than written by hand; everything else is in pyproject.toml.
`mindscape_ops.templates` is the top-level templates/ folder (see package-dir there)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["mindscape_ops", "mindscape_ops.*"]), "mindscape_ops.templates"])
