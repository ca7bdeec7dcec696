"""mindscape auth: the identity service's users, for operators, without a browser. A password
comes from a file or stdin, never from the command line (it would show in `ps` and shell
history)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mindscape_ops.cli.common import FilesOption, JsonOption, audited, console, lock_root, open_project, stdout_json

app = typer.Typer(
    help="Users of the identity service: create, list, set roles, disable, reset MFA; rotate the token signing key.",
    no_args_is_help=True,
)


def _admin(files: list[Path] | None):
    from mindscape_ops.services.identity_client import operator_endpoints

    project = open_project(files)
    return project, operator_endpoints(project.platform)[1]


def _password(password_file: Path | None) -> str:
    from mindscape_ops.errors import UsageError

    if password_file is not None:
        try:
            text = password_file.read_text()
        except OSError as exc:
            raise UsageError(f"--password-file {password_file}: {exc.strerror}", "name a readable file") from None
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        import getpass

        text = getpass.getpass("password: ")
    password = text.rstrip("\r\n")
    if not password:
        raise UsageError("the password is empty", "put it in --password-file FILE or on stdin")
    return password


def _call(action):
    from mindscape_ops.errors import EnvironmentUnusable, OperationFailed
    from mindscape_ops.services.identity_client import IdentityError

    try:
        return action()
    except IdentityError as exc:
        if "answered" in str(exc) or str(exc).startswith("no identity"):
            raise OperationFailed(str(exc)) from None
        raise EnvironmentUnusable(str(exc), "is the identity service up? `mindscape up identity`") from None


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (their login).")],
    roles: Annotated[list[str] | None, typer.Option("--role", help="A role of security.auth.roles (repeat).")] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Read the password from this file (else stdin).")
    ] = None,
    files: FilesOption = None,
) -> None:
    """Create a user with roles; the password is read from --password-file or stdin."""
    from mindscape_ops.services import identity_client

    with audited("auth create-user", lock_root(files), email=email, roles=roles or []) as record:
        project, admin = _admin(files)
        record.project = project
        _known_roles(project, list(roles or []))
        password = _password(password_file)
        made = _call(lambda: identity_client.create_identity(admin, email, password, list(roles or [])))
        console(stderr=True).print(f"created {email} ({made['id']}) with roles {', '.join(roles or []) or 'none'}")


def _known_roles(project, roles: list[str]) -> None:
    from mindscape_ops.errors import UsageError

    known = project.platform.security.auth.roles
    unknown = [role for role in roles if role not in known]
    if unknown:
        raise UsageError(f"unknown role(s): {', '.join(unknown)}", f"roles of security.auth.roles: {', '.join(known)}")


@app.command("set-roles")
def set_roles(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    roles: Annotated[
        list[str] | None, typer.Argument(help="Its roles from now on (security.auth.roles); none: no role.")
    ] = None,
    files: FilesOption = None,
) -> None:
    """Replace a user's roles: the tokens minted for their sessions carry the new roles from the
    next request on (within the gateway's session cache). Recorded, with the roles before,
    in the audit log and the log store."""
    from mindscape_ops.services import identity_client

    wanted = list(dict.fromkeys(roles or []))
    with audited("auth set-roles", lock_root(files), email=email, roles=wanted) as record:
        project, admin = _admin(files)
        record.project = project
        _known_roles(project, wanted)
        found = _call(lambda: identity_client.find_identity(admin, email))
        before = _call(lambda: identity_client.set_roles(admin, found, wanted))
        record.arguments["before"] = before
        console(stderr=True).print(
            f"{email}: roles {', '.join(wanted) or 'none'} (were {', '.join(before) or 'none'})", markup=False
        )


@app.command("list")
def list_users(as_json: JsonOption = False, files: FilesOption = None) -> None:
    """Every user: e-mail, id, state, roles."""
    from mindscape_ops.services import identity_client

    _, admin = _admin(files)
    rows = [
        {
            "email": (found.get("traits") or {}).get("email"),
            "id": found.get("id"),
            "state": found.get("state"),
            "roles": ((found.get("metadata_public") or {}).get("roles")) or [],
        }
        for found in _call(lambda: identity_client.list_identities(admin))
    ]
    if as_json:
        stdout_json(rows)
        return
    out = console()
    for row in rows:
        out.print(f"{row['email']:<40} {row['state']:<9} {','.join(row['roles']) or '-':<20} {row['id']}", markup=False)


@app.command("disable")
def disable(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    files: FilesOption = None,
) -> None:
    """Disable a user: no new login, and their open sessions are refused at once."""
    from mindscape_ops.services import identity_client

    with audited("auth disable", lock_root(files), email=email) as record:
        project, admin = _admin(files)
        record.project = project
        found = _call(lambda: identity_client.find_identity(admin, email))
        _call(lambda: identity_client.set_state(admin, found, "inactive"))
        console(stderr=True).print(f"disabled {email}; its sessions are revoked")


@app.command("reset-mfa")
def reset_mfa(
    email: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    files: FilesOption = None,
) -> None:
    """Remove a user's second factors (TOTP, recovery codes, WebAuthn) and end their sessions: they
    log in with their password and enrol a factor again."""
    from mindscape_ops.services import identity_client

    with audited("auth reset-mfa", lock_root(files), email=email) as record:
        project, admin = _admin(files)
        record.project = project
        found = _call(lambda: identity_client.find_identity(admin, email))
        removed = _call(lambda: identity_client.remove_second_factors(admin, found))
        record.arguments["removed"] = removed
        what = ", ".join(removed) if removed else "no second factor (none was enrolled)"
        console(stderr=True).print(f"removed from {email}: {what}; its sessions are revoked")


@app.command("rotate-key")
def rotate_key(files: FilesOption = None) -> None:
    """A new token signing key: the identity service signs with it from now on (it restarts);
    the old key stays in the JWKS until the tokens it signed have expired."""
    from mindscape_ops.services import identity_client

    with audited("auth rotate-key", lock_root(files)) as record:
        project, _ = _admin(files)
        record.project = project
        kid, published, restarted = identity_client.rotate_signing_key(project)
        record.arguments["kid"] = kid  # the new key's id (public: it is in the JWKS)
        console(stderr=True).print(
            f"new signing key {kid}; the JWKS publishes {', '.join(published)}"
            + ("; the identity service restarted and signs with it" if restarted else "; it signs with it once up")
        )
