"""Whole Postgres databases for restores: made like the live one, and swapped in by rename.

A restore over the live database never edits it in place (`pg_restore --clean` drops only what
the dump holds: a table created after the backup would survive it). The backup is restored into
a new database made like the live one (owner, encoding, locale, its settings and privileges),
checked, and only then swapped in: new connections to the live database are refused, the open
ones terminated, and in one transaction the live database is renamed aside and the new one
takes its name. The old one is dropped last. Until the swap commits the live database is as it
was (a failure before it only re-allows connections).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from mindscape_ops.errors import EnvironmentUnusable, OperationFailed, UsageError

if TYPE_CHECKING:
    import psycopg

    from mindscape_ops.provision.endpoints import DatabaseTarget

DBNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAINTENANCE = ("postgres", "template1")  # where the swap connects: neither database it renames
TERMINATE_WAIT_S = 30.0


def connect(target: DatabaseTarget, dbname: str | None = None, autocommit: bool = True) -> psycopg.Connection:
    import psycopg
    from psycopg.conninfo import make_conninfo

    try:
        conninfo = make_conninfo(target.conninfo, dbname=dbname) if dbname else target.conninfo
        return psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        # psycopg's text runs over lines ("... failed: Connection refused\n\tIs the server running ..."): all of
        # it, without the connection string or its password (its text quotes a string it cannot parse)
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        reason = target.redact(reason)
        raise EnvironmentUnusable(
            f"cannot connect to {target.display}{f' (database {dbname})' if dbname else ''}: {reason}",
            "is it running? `mindscape up postgres`, or check $DATABASE_URL",
        ) from None


def execute(conn: psycopg.Connection, statement: Any, *names: str, args: tuple = ()) -> list[tuple]:
    """`statement` (text with {} filled by quoted identifiers, or composed SQL); the rows it
    returns. Postgres refusing it (a missing privilege, a role that is gone) is one line."""
    import psycopg
    from psycopg import sql

    query = sql.SQL(statement).format(*(sql.Identifier(n) for n in names)) if isinstance(statement, str) else statement
    try:
        cursor = conn.execute(query, args)
        return cursor.fetchall() if cursor.description else []
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OperationFailed(
            f"postgres refused {query.as_string(conn)[:120]!r}: {reason}",
            "the restore needs a role that owns the database and may create databases (CREATEDB)",
        ) from None


def create_like(target: DatabaseTarget, name: str, like: str) -> None:
    """A new, empty database `name` (from template0) with `like`'s encoding and locale; owned
    by the same role, with its settings and privileges, when `like` is the live one."""
    if not DBNAME.match(name):
        raise UsageError(
            f"--into {name!r}: not a database name",
            "use lower-case letters, digits and _ (at most 63), not starting with a digit",
        )
    with connect(target) as conn:
        if execute(conn, "SELECT 1 FROM pg_database WHERE datname = %s", args=(name,)):
            raise UsageError(f"database {name} already exists", "name a new one with --into, or drop that one first")
        encoding, collate, ctype = execute(
            conn,
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = %s",
            args=(like,),
        )[0]
        from psycopg import sql

        options = [
            sql.SQL("TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype)
            )
        ]
        icu = _icu_locale(conn, like)
        if icu:
            options.append(sql.SQL("LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(icu)))
        execute(conn, sql.SQL("CREATE DATABASE {} {}").format(sql.Identifier(name), sql.SQL(" ").join(options)))


def _icu_locale(conn: psycopg.Connection, like: str) -> str | None:
    version = conn.info.server_version
    if version < 150000:
        return None
    column = "datlocale" if version >= 170000 else "daticulocale"
    row = execute(conn, f"SELECT datlocprovider, {column} FROM pg_database WHERE datname = %s", args=(like,))
    return row[0][1] if row and row[0][0] == "i" else None


def copy_properties(target: DatabaseTarget, source: str, name: str) -> None:
    """`source`'s owner, database-level settings (ALTER DATABASE ... SET, ALTER ROLE ... IN
    DATABASE ... SET), privileges and comment, onto `name`."""
    with connect(target) as conn:
        owner, acl, comment = execute(
            conn,
            "SELECT pg_get_userbyid(datdba), datacl::text[], shobj_description(oid, 'pg_database') "
            "FROM pg_database WHERE datname = %s",
            args=(source,),
        )[0]
        if owner != conn.info.parameter_status("session_authorization"):
            execute(conn, "ALTER DATABASE {} OWNER TO {}", name, owner)
        for role, settings in execute(
            conn,
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = %s",
            args=(source,),
        ):
            for setting in settings:
                key, _, value = setting.partition("=")
                execute(conn, _set(name, role, key, value))
        if acl is not None:
            execute(conn, "REVOKE ALL ON DATABASE {} FROM PUBLIC", name)
            for grantee, privilege, grantable in execute(
                conn,
                "SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable "
                "FROM pg_database d, aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
                "WHERE d.datname = %s",
                args=(source,),
            ):
                _grant(conn, name, grantee, privilege, grantable)
        if comment is not None:
            from psycopg import sql

            execute(conn, sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))


def _set(name: str, role: str | None, key: str, value: str):
    from psycopg import sql

    where = (
        sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), sql.Identifier(name))
        if role
        else (sql.SQL("ALTER DATABASE {}").format(sql.Identifier(name)))
    )
    values = _list_items(value) if key.lower() in _LIST_SETTINGS else [value]
    return sql.SQL("{} SET {} = {}").format(
        where, sql.Identifier(key), sql.SQL(", ").join(sql.Literal(v) for v in values)
    )


# Settings stored as a list of (possibly double-quoted) items: one quoted string would become a
# single item (search_path '"$user", public' is one odd schema name), so each item is its own literal.
_LIST_SETTINGS = {
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "shared_preload_libraries",
    "local_preload_libraries",
    "unix_socket_directories",
}


def _list_items(text: str) -> list[str]:
    """`"$user", public` -> ['$user', 'public'] (commas inside double quotes kept, "" is ")."""
    items, item, quoted, i = [], "", False, 0
    while i < len(text):
        char = text[i]
        if char == '"':
            if quoted and text[i + 1 : i + 2] == '"':
                item, i = item + '"', i + 2
                continue
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(item.strip())
            item = ""
        else:
            item += char
        i += 1
    items.append(item.strip())
    return [entry for entry in items if entry]


def _grant(conn: psycopg.Connection, name: str, grantee: str, privilege: str, grantable: bool) -> None:
    from psycopg import sql

    to = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
    execute(
        conn,
        sql.SQL("GRANT {} ON DATABASE {} TO {}" + (" WITH GRANT OPTION" if grantable else "")).format(
            sql.SQL(privilege), sql.Identifier(name), to
        ),
    )


def drop(target: DatabaseTarget, name: str) -> None:
    with connect(target) as conn:
        execute(conn, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


def swap(target: DatabaseTarget, live: str, ready: str, aside: str) -> None:
    """`ready` takes `live`'s name; the live database is renamed `aside`. Raises, with the live
    database as it was (connections allowed again), when it cannot."""
    with maintenance(target) as conn:
        execute(conn, "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false", live)
        try:
            _terminate(conn, live)
            with conn.transaction():
                execute(conn, "ALTER DATABASE {} RENAME TO {}", live, aside)
                execute(conn, "ALTER DATABASE {} RENAME TO {}", ready, live)
        except BaseException:
            execute(conn, "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", live)
            raise


def maintenance(target: DatabaseTarget) -> psycopg.Connection:
    failure: EnvironmentUnusable | None = None
    for dbname in MAINTENANCE:
        try:
            return connect(target, dbname)
        except EnvironmentUnusable as exc:
            failure = exc
    assert failure is not None
    raise failure


def _terminate(conn: psycopg.Connection, live: str) -> None:
    """End every other session in `live` (new ones are refused by now)."""
    deadline = time.monotonic() + TERMINATE_WAIT_S
    while True:
        others = execute(
            conn,
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            args=(live,),
        )
        if not others:
            return
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"{len(others)} session(s) in database {live} could not be ended within {TERMINATE_WAIT_S:g}s: "
                "the live database is untouched",
                "stop the applications using it (or grant this role pg_signal_backend) and run the restore again",
            )
        time.sleep(0.1)
