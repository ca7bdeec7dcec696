"""Point-in-time recovery of the database (backups.pitr), the service side: Postgres archives
its write-ahead log through pgBackRest (`archive_mode`, `archive_command`), with pgBackRest's
configuration under .mindscape/pgbackrest/ mounted read-only at /etc/pgbackrest, and a local
repository under backups.local.dir mounted at /var/lib/pgbackrest. The stanza is created once
Postgres answers (`up`). The commands that back up, list and restore are in backup/physical.py.

The repository's cipher pass (aes-256-cbc, when backups.encryption is set) is derived from the
backup key and written only to .mindscape/pgbackrest/conf.d/, never to a rendered file.

Beside it: its part on Kubernetes (pitr_kubernetes.py), its alerts (pitr_alerts.py), its gates
(pitr_gates.py), what the repository holds (pitr_info.py), a restore's swap (pitr_swap.py).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mindscape_ops.services.spec import Mount

if TYPE_CHECKING:
    from mindscape_ops.config.backups import Pitr
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project

SERVICE = "postgres"  # the service whose write-ahead log is archived
OS_USER = "postgres"  # who runs the server in its image (and so pgBackRest)
SERVER = "postgres"  # the server's program, first in its container's command
CONF_DIR = ".mindscape/pgbackrest"
IN_CONTAINER = "/etc/pgbackrest"
REPO = "/var/lib/pgbackrest"
PGDATA = "/var/lib/postgresql/data/pgdata"
SOCKET = "/var/run/postgresql"
SINCE = "since"  # in CONF_DIR: when the stanza was first created
# Postgres settings pgBackRest needs; set by mindscape when PITR is on, so not in services.postgres.settings
OWNED_SETTINGS = ("archive_mode", "archive_command", "archive_timeout", "wal_level")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "host.docker.internal")


def settings(platform: Platform) -> Pitr | None:
    """backups.pitr when it is on, else None."""
    pitr = platform.backups.pitr
    return pitr if pitr.enabled and platform.backups.enabled else None


def stanza(platform: Platform) -> str:
    return platform.project


def postgres_args(platform: Platform) -> list[str]:
    """`postgres -c` arguments that archive every WAL segment through pgBackRest."""
    pitr = settings(platform)
    if pitr is None:
        return []
    return [
        *("-c", "wal_level=replica"),
        *("-c", "archive_mode=on"),
        *("-c", f"archive_command={archive_command(platform)}"),
        *("-c", f"archive_timeout={int(pitr.archive_timeout.seconds)}"),
    ]


def archive_command(platform: Platform, data_dir: str | None = None) -> str:
    """pgBackRest's archive-push of what Postgres names, `%p`: a path relative to the server's
    data directory, which pgBackRest reads under pg1-path, and refuses to push when the server
    runs elsewhere. A server on another data directory than the live one (a restore's copy,
    pgdata.restore-STAMP) is given its own as pg1-path."""
    where = f" --pg1-path={data_dir}" if data_dir else ""
    return f"pgbackrest --stanza={stanza(platform)}{where} archive-push %p"


# The official image has no pgBackRest: with backups.pitr, `up` runs one derived from it that
# adds it (Debian's package, from the image's own apt sources), built from a rendered build file.
OFFICIAL_IMAGES = ("postgres", "library/postgres", "docker.io/library/postgres")
BUILD_FILE = "postgres/Containerfile"  # under paths.deploy
DERIVED_REPOSITORY = "mindscape-derived/postgres-pgbackrest"


def _split(image: str) -> tuple[str, str]:
    """Pure: (repository, tag) of an image reference (a digest left out; no tag: latest)."""
    ref = image.partition("@")[0]
    if ":" in ref.rsplit("/", 1)[-1]:
        repository, _, tag = ref.rpartition(":")
        return repository, tag
    return ref, "latest"


def derives_from(platform: Platform) -> str | None:
    """The official image the database's image is derived from (None: its image is used as is:
    PITR is off, or it is another image, such as the local one, which has pgBackRest)."""
    if settings(platform) is None:
        return None
    image = platform.services.postgres.image
    return image if _split(image)[0] in OFFICIAL_IMAGES else None


def derived_image(platform: Platform) -> str | None:
    """`mindscape-derived/postgres-pgbackrest:<the official image's tag>`, when it is derived."""
    base = derives_from(platform)
    return f"{DERIVED_REPOSITORY}:{_split(base)[1]}" if base else None


def build_file(platform: Platform) -> str | None:
    return f"{platform.paths.deploy}/{BUILD_FILE}" if derives_from(platform) else None


def mounts(platform: Platform) -> tuple[Mount, ...]:
    pitr = settings(platform)
    if pitr is None:
        return ()
    conf = (Mount(CONF_DIR, IN_CONTAINER),)
    if pitr.repository == "local":
        return (*conf, Mount(local_repository(platform), REPO, read_only=False, live=True))
    return conf


def reaches_host(platform: Platform) -> bool:
    """An S3 repository on this machine (a test server) is reached at host.docker.internal."""
    pitr = settings(platform)
    s3 = platform.backups.s3
    if pitr is None or pitr.repository != "s3" or s3 is None or s3.endpoint_url is None:
        return False
    return urlsplit(str(s3.endpoint_url)).hostname in _LOCAL_HOSTS


def local_repository(platform: Platform) -> str:
    """The local repository, relative to the project root."""
    return f"{platform.backups.local.dir}/{platform.backups.pitr.prefix}"


def conf_text(platform: Platform) -> str:
    """pgbackrest.conf: no secret in it (the cipher pass and S3 keys go to conf.d/)."""
    pitr = platform.backups.pitr
    pg = platform.services.postgres
    lines = ["# written by mindscape from platform.yaml (backups.pitr); do not edit", "[global]"]
    if pitr.repository == "s3" and platform.backups.s3 is not None:
        s3 = platform.backups.s3
        lines += [
            "repo1-type=s3",
            f"repo1-path=/{(s3.prefix.strip('/') + '/' if s3.prefix.strip('/') else '')}{pitr.prefix}",
            f"repo1-s3-bucket={s3.bucket}",
            f"repo1-s3-region={s3.region}",
        ]
        endpoint = urlsplit(str(s3.endpoint_url)) if s3.endpoint_url else None
        if endpoint is not None and endpoint.hostname:
            host = "host.docker.internal" if endpoint.hostname in _LOCAL_HOSTS else endpoint.hostname
            lines += [f"repo1-s3-endpoint={host}", "repo1-s3-uri-style=path"]
            if endpoint.port:
                lines.append(f"repo1-storage-port={endpoint.port}")
            if host == "host.docker.internal":  # a test server on this machine (moto): no certificate to verify
                lines.append("repo1-storage-verify-tls=n")
        else:
            lines.append(f"repo1-s3-endpoint=s3.{s3.region}.amazonaws.com")
    else:
        lines.append(f"repo1-path={REPO}")
    lines += [
        f"repo1-retention-full={pitr.keep_full}",
        f"compress-type={pitr.compression}",
        "start-fast=y",
        "log-level-console=info",
        "log-level-stderr=warn",
        "log-level-file=off",
        "",
        f"[{stanza(platform)}]",
        f"pg1-path={PGDATA}",
        f"pg1-socket-path={SOCKET}",
        f"pg1-user={pg.user}",
        "",
    ]
    return "\n".join(lines)


_S3_KEYS = ("repo1-s3-key=", "repo1-s3-key-secret=", "repo1-s3-token=")


def secret_conf_text(key: bytes | None, environ: dict[str, str], before: str = "") -> str:
    """conf.d/secrets.conf: the cipher pass derived from the backup key; S3 keys from the AWS
    variables when set, else those of the file `before` (what archiving uses: a command run
    where the variables are not set, a scheduled backup, keeps them). Empty of secrets when
    there are none."""
    from mindscape_ops.adapters.backup_key import derived_pass

    lines = ["[global]"]
    if key is not None:
        lines += ["repo1-cipher-type=aes-256-cbc", f"repo1-cipher-pass={derived_pass(key, 'pgbackrest repo1')}"]
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        lines += [
            f"repo1-s3-key={environ['AWS_ACCESS_KEY_ID']}",
            f"repo1-s3-key-secret={environ['AWS_SECRET_ACCESS_KEY']}",
        ]
        if environ.get("AWS_SESSION_TOKEN"):
            lines.append(f"repo1-s3-token={environ['AWS_SESSION_TOKEN']}")
    else:
        lines += [line for line in before.splitlines() if line.startswith(_S3_KEYS)]
    return "\n".join(lines) + "\n"


def prepare(project: Project) -> None:
    """Write pgBackRest's configuration under .mindscape/ (and make the local repository's
    folder) before Postgres starts; nothing when PITR is off."""
    from mindscape_ops.adapters.backup_key import load_key

    platform = project.platform
    pitr = settings(platform)
    if pitr is None:
        return
    encryption = platform.backups.encryption
    key = load_key(encryption.key_env, encryption.key_file, project.root) if encryption else None
    folder = project.workspace.ensure_dir() / CONF_DIR.split("/", 1)[1]
    (folder / "conf.d").mkdir(parents=True, exist_ok=True)
    _write(folder / "pgbackrest.conf", conf_text(platform), 0o644)
    # read by the container's postgres user (whose uid the host does not know): 0644, in
    # .mindscape/ (0700), which only this user can enter
    secret_conf = folder / "conf.d" / "secrets.conf"
    before = secret_conf.read_text() if secret_conf.is_file() else ""
    _write(secret_conf, secret_conf_text(key, dict(os.environ), before), 0o644)
    if pitr.repository == "local":
        (project.root / local_repository(platform)).mkdir(parents=True, exist_ok=True)


def _write(path: Path, text: str, mode: int) -> None:
    if path.is_file() and path.read_text() == text:
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.chmod(mode)
    partial.replace(path)


def create_stanza(project: Project) -> str:
    """Once Postgres answers: the repository folder owned by postgres, then `stanza-create`
    (idempotent) and `check` (a WAL segment really archived). Returns what pgBackRest said."""
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.errors import OperationFailed

    platform = project.platform
    engine = Engine()
    container = platform.container_name(SERVICE)
    pitr = settings(platform)
    try:
        run(engine, container, ["pgbackrest", "version"])
    except OperationFailed:
        raise OperationFailed(
            f"backups.pitr: the image of {container} has no pgbackrest",
            f"use an image with pgBackRest (the local one has it: `mindscape images build {SERVICE}`), "
            "or turn backups.pitr off",
        ) from None
    wake_checkpointer(engine, container, platform)  # up has just (re)started it, or left it as it was
    if pitr is not None and pitr.repository == "local":
        run(engine, container, ["chown", f"{OS_USER}:{OS_USER}", REPO], user="root")
    run(engine, container, ["pgbackrest", f"--stanza={stanza(platform)}", "stanza-create"])
    marker = project.root / CONF_DIR / SINCE
    if not marker.is_file():  # when archiving began: no backup is due from before it
        _write(marker, datetime.now(UTC).isoformat(timespec="seconds") + "\n", 0o644)
    return run(engine, container, ["pgbackrest", f"--stanza={stanza(platform)}", "check"])


# Postgres 15's checkpointer, started beside the startup process, computes its first sleep while
# recovery is still "in progress" (even on a clean start), so it sleeps checkpoint_timeout (5 min)
# instead of archive_timeout: until something wakes it, a segment is not closed by archive_timeout.
# A configuration reload wakes every process (and reads nothing new: the settings are on the
# command line); sent once Postgres answers, i.e. once its startup is over.
WAKE_CHECKPOINTER = "SELECT pg_reload_conf()"


def wake_checkpointer(engine, container: str, platform: Platform) -> None:
    """After a start of the server: archive_timeout honoured from now on, not from its first
    checkpoint (see WAKE_CHECKPOINTER)."""
    run(engine, container, psql(platform, WAKE_CHECKPOINTER))


# Polled inside the container (one exec, not one per try): $2 is what the query $3 must answer;
# then the query $4 runs and says its answer. $5, when set, is the data directory of a server
# that must stay up meanwhile (exit 4 when it stopped); exit 3 when $1 seconds went by.
_WAIT = r"""
end=$(( $(date +%s) + $1 )); want=$2; check=$3; then=$4; data=$5; shift 5
while [ "$("$@" "$check" 2>/dev/null)" != "$want" ]; do
    if [ -n "$data" ] && ! pg_ctl -D "$data" status >/dev/null 2>&1; then
        echo "ERROR: the server stopped" >&2; exit 4
    fi
    if [ "$(date +%s)" -ge "$end" ]; then echo "ERROR: not within $1s" >&2; exit 3; fi
    sleep 0.05
done
exec "$@" "$then"
"""


def wait_then(
    engine, container: str, platform: Platform, until: tuple[str, str], then: str, timeout: float, data_dir: str = ""
) -> str:
    """Once the query `until[0]` answers `until[1]` in the container (tried every 50 ms, for at
    most `timeout` seconds; a server on `data_dir`, when given, must stay up meanwhile), the
    answer of the query `then`. OperationFailed otherwise, saying which."""
    base = psql(platform, "")[:-1]  # ends with -XAtqc: the query follows
    argv = ["sh", "-c", _WAIT, "-", str(max(1, int(timeout))), until[1], until[0], then, data_dir, *base]
    return run(engine, container, argv).strip()


def since(project: Project) -> datetime | None:
    """When archiving began for this project (its stanza was first created by `up`)."""
    try:
        return datetime.fromisoformat((project.root / CONF_DIR / SINCE).read_text().strip())
    except (OSError, ValueError):
        return None


def psql(platform: Platform, sql: str) -> list[str]:
    """psql over the container's socket as the platform's user, in its database: one value out."""
    pg = platform.services.postgres
    return ["psql", "-h", SOCKET, "-U", pg.user, "-d", pg.database, "-XAtqc", sql]


def run(engine, container: str, argv: list[str], user: str = OS_USER) -> str:
    """A command in the database's container; its output, or OperationFailed with its last line."""
    from mindscape_ops.errors import OperationFailed

    output = engine.exec_output(container, argv, user=user)
    text = b"".join(output).decode("utf-8", "replace")
    if output.exit_code != 0:
        errors = output.stderr.decode("utf-8", "replace") if isinstance(output.stderr, bytes) else str(output.stderr)
        lines = [line.strip() for line in (errors + "\n" + text).splitlines() if line.strip()]
        errors_said = [line for line in lines if line.startswith(("ERROR", "WARN"))]
        said = errors_said[0] if errors_said else (lines[-1] if lines else "no output")  # pgBackRest's own error
        known = explain(errors + "\n" + text)
        if known is not None:
            raise OperationFailed(f"{known[0]} ({said})", known[1])
        raise OperationFailed(f"`{' '.join(argv[:3])}` failed in {container} (exit {output.exit_code}): {said}")
    return text


# pgBackRest's errors a person can act on, by what they say: (words, what it means, what to do)
_KNOWN = (
    (
        # an encrypted file read with another pass: garbage where pgBackRest expects its info format
        ("CryptoError", "cipher header invalid", "unable to decrypt", "key/value found outside of section"),
        "the repository cannot be read with backups.encryption's key: it is not the one the repository "
        "was written with",
        "put back the key it was written with (backups.encryption), then `mindscape up`",
    ),
    (
        ("unable to acquire lock", "another pgBackRest process"),
        "another pgBackRest command holds the stanza's lock (one left running by an interrupted mindscape "
        "goes on in the database's container until it ends)",
        "try again once it has ended",
    ),
)


def explain(text: str) -> tuple[str, str] | None:
    """Pure: what pgBackRest's output means and what to do, when it is a known error."""
    for words, meaning, hint in _KNOWN:
        if any(word.lower() in text.lower() for word in words):
            return meaning, hint
    return None
