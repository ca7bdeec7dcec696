"""The labels mindscape puts on what it creates in the engine (containers, volumes, the
network), as docker compose keeps its own in compose/const.py: the adapters find our things by
them, and provision/ writes them. Constants only."""

from __future__ import annotations

LABEL_PROJECT = "io.mindscape.project"
LABEL_SERVICE = "io.mindscape.service"
LABEL_CONFIG_HASH = "io.mindscape.config-hash"
LABEL_CONFIG_PARTS = "io.mindscape.config-parts"  # short hash per spec field: says *why* a recreate
