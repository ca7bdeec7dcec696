"""security gates on disk: secrets.env private, no secret value in a rendered or tracked file.
The gates against the live gateway (headers, CORS, the rate limit, /healthz) are the gateway's
own, in services/gateway.py."""

from __future__ import annotations

from mindscape_ops.check.model import Gate
from mindscape_ops.check.secrets import secrets_in_files, secrets_mode

GATES = (
    Gate("security.secrets_mode", secrets_mode, "chmod 600 .mindscape/secrets.env"),
    Gate(
        "security.secrets_in_files",
        secrets_in_files,
        "remove the value from each file named (and from git history), then rotate that password: "
        "a committed secret is a leaked one",
    ),
)
