"""`mindscape backup`: streamed, checksummed dumps of the data services, to local disk or S3.

Bytes flow from the service (pg_dump's output, Redis' RDB) through a sha256 (and encryption)
straight to the store: no temporary file, no whole backup in memory. The manifest is written
last: a backup without one does not exist. `retention.py` decides what `prune` removes, purely.
"""
