"""The identity service's e-mails through monitoring.smtp, live: `mindscape up` of Postgres and
the identity service (Ory Kratos, local image) whose monitoring.smtp is a relay served by this
test at host.docker.internal (its password from `password_env`, plaintext: `require_tls:
false`). A user made with `mindscape auth create-user` asks for a recovery code through Kratos'
API flow: the relay, which takes mail only after AUTH LOGIN with that password, receives one
message to that address holding the code, which then passes the recovery flow; the message
holds no password of the user's, and no file the platform rendered holds the relay's password.

The relay advertises AUTH LOGIN alone: Kratos' mailer sends PLAIN only over TLS (or to
localhost), and LOGIN over plaintext only to a relay that offers it. It listens on the host's
address on Docker's bridge (where host.docker.internal leads; that address is this machine's
alone, nothing listens on a public interface)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from mindscape_ops.services import identity_client as kratos

from .conftest import remove_project, unique_project
from .identity_support import PASSWORD, ask_recovery, free_port, identity_images, up_with_ada
from .test_alert_delivery_engine import bridge_gateway

pytestmark = pytest.mark.engine
RELAY_USER = "relay-user"
RELAY_PASSWORD = "relay-" + uuid.uuid4().hex  # a fresh one each run: found nowhere by chance
RELAY_ENV = "MINDSCAPE_TEST_SMTP_PASSWORD"
USERNAME_PROMPT = base64.b64encode(b"Username:").decode()
PASSWORD_PROMPT = base64.b64encode(b"Password:").decode()


@dataclass(frozen=True)
class Mail:
    login: tuple[str, str]
    sender: str
    recipients: tuple[str, ...]
    data: bytes

    def text(self) -> str:
        """Every text part of the message, decoded (quoted-printable, base64)."""
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        parts = [p for p in message.walk() if p.get_content_maintype() == "text"]
        return "\n".join(p.get_content() for p in parts)


class Relay(socketserver.ThreadingTCPServer):
    """A minimal SMTP relay (EHLO/HELO, AUTH LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that
    takes mail only after a login with `credentials`, and keeps each message it was given."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: str, credentials: tuple[str, str]) -> None:
        self.credentials = credentials
        self.mail: list[Mail] = []
        self.refused_logins = 0
        super().__init__((address, 0), Session)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def wait_for(self, recipient: str, timeout: float) -> Mail:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in list(self.mail) if recipient in m.recipients]
            if found:
                return found[-1]
            time.sleep(0.5)
        raise AssertionError(f"no mail to {recipient}; received {len(self.mail)}, refused logins {self.refused_logins}")


class Session(socketserver.StreamRequestHandler):
    """One client's conversation with the relay."""

    server: Relay
    timeout = 30

    def reply(self, *lines: str) -> None:
        *first, last = lines
        self.wfile.write("".join(f"{code}-{text}\r\n" for code, text in (f.split(" ", 1) for f in first)).encode())
        self.wfile.write(f"{last}\r\n".encode())

    def read(self) -> str | None:
        line = self.rfile.readline(4096)
        return line.decode("utf-8", "replace").rstrip("\r\n") if line else None

    def handle(self) -> None:
        login: tuple[str, str] | None = None
        sender, recipients = None, []
        self.reply("220 relay ESMTP ready")
        while (line := self.read()) is not None:
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250 relay", "250 AUTH LOGIN", "250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 relay")
            elif verb == "AUTH":
                login = self.authenticate(argument)
            elif verb == "MAIL":
                if login is None:
                    self.reply("530 5.7.0 authentication required")
                    continue
                sender, recipients = self.address(argument), []
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                recipients.append(self.address(argument))
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                if login is None or sender is None or not recipients:
                    self.reply("503 5.5.1 MAIL and RCPT first")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                self.server.mail.append(Mail(login, sender, tuple(recipients), self.message()))
                sender, recipients = None, []
                self.reply("250 2.0.0 queued")
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 2.0.0 ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("502 5.5.2 not implemented")

    @staticmethod
    def address(argument: str) -> str:
        found = re.search(r"<([^>]*)>", argument)
        return found.group(1) if found else argument.split(":", 1)[-1].strip()

    def authenticate(self, argument: str) -> tuple[str, str] | None:
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() != "LOGIN":
            self.reply("504 5.5.4 only LOGIN")
            return None
        try:
            if not initial:
                self.reply(f"334 {USERNAME_PROMPT}")
                initial = self.read() or ""
            user = base64.b64decode(initial).decode()
            self.reply(f"334 {PASSWORD_PROMPT}")
            password = base64.b64decode(self.read() or "").decode()
        except ValueError:
            self.reply("501 5.5.2 not base64")
            return None
        if (user, password) != self.server.credentials:
            self.server.refused_logins += 1
            self.reply("535 5.7.8 bad credentials")
            return None
        self.reply("235 2.7.0 authenticated")
        return user, password

    def message(self) -> bytes:
        lines = []
        while (line := self.rfile.readline(65536)) not in (b".\r\n", b".\n", b""):
            lines.append(line[1:] if line.startswith(b".") else line)  # dot-stuffing undone
        return b"".join(lines)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, go_image):
    refs = identity_images(docker_client, go_image)
    relay = Relay(bridge_gateway(docker_client), (RELAY_USER, RELAY_PASSWORD))
    directory = tmp_path_factory.mktemp("identity-smtp")
    project = unique_project("ids")
    (directory / "platform.yaml").write_text(
        f"""version: 1
project: {project}
services:
  postgres: {{image: "{refs["postgres"]}", port: auto}}
  identity: {{image: "{refs["identity"]}", port: auto, admin_port: {free_port()}}}
monitoring:
  smtp:
    host: host.docker.internal
    port: {relay.port}
    from: auth@example.com
    username: {RELAY_USER}
    password_env: {RELAY_ENV}
    require_tls: false
security:
  auth:
    roles: {{user: {{}}}}
"""
    )
    try:
        ports = up_with_ada(directory, env={RELAY_ENV: RELAY_PASSWORD})
        yield SimpleNamespace(
            directory=directory,
            project=project,
            docker=docker_client,
            relay=relay,
            public=kratos.Endpoint("127.0.0.1", ports["identity"]),
        )
    finally:
        remove_project(docker_client, project)
        relay.shutdown()
        relay.server_close()


@pytest.fixture(scope="module")
def recovery(platform):
    """A recovery code asked for through the API flow: (the flow's id, the mail it sent)."""
    flow = ask_recovery(platform.public, "ada@example.com")
    try:
        return flow, platform.relay.wait_for("ada@example.com", timeout=60)
    except AssertionError as exc:  # what the identity service's courier said instead
        labels = [f"io.mindscape.project={platform.project}", "io.mindscape.service=identity"]
        (identity,) = platform.docker.containers.list(filters={"label": labels})
        said = [line for line in identity.logs().decode().splitlines() if re.search(r"courier|smtp|mail", line, re.I)]
        raise AssertionError(f"{exc}; the courier said: {said[-5:]}") from None


def test_the_recovery_email_reaches_the_relay_with_its_code(platform, recovery) -> None:
    flow, mail = recovery
    assert mail.recipients == ("ada@example.com",) and mail.sender == "auth@example.com", mail
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert message["To"] == "ada@example.com", message["To"]
    codes = re.findall(r"\b\d{6}\b", mail.text())
    assert len(set(codes)) == 1, mail.text()
    # the code is the one the flow waits for: a wrong one is refused, the mailed one passes
    wrong = str((int(codes[0]) + 1) % 1000000).zfill(6)
    status, answer = platform.public.call(
        "POST", f"/self-service/recovery?flow={flow}", {"method": "code", "code": wrong}
    )
    assert status == 200 and "invalid" in json.dumps(answer).lower(), (status, answer)
    status, answer = platform.public.call(
        "POST", f"/self-service/recovery?flow={flow}", {"method": "code", "code": codes[0]}
    )
    # accepted: the flow moves on to settings (a new password), where a browser would be sent
    assert status == 422 and answer["error"]["id"] == "browser_location_change_required", (status, answer)
    assert "/settings?flow=" in answer["redirect_browser_to"], answer


def test_the_relay_was_logged_into_with_the_password_from_its_variable(platform, recovery) -> None:
    _, mail = recovery
    assert mail.login == (RELAY_USER, RELAY_PASSWORD)
    assert platform.relay.refused_logins == 0


def test_no_password_in_the_mail_nor_the_relay_password_in_rendered_files(platform, recovery) -> None:
    _, mail = recovery
    for secret in (PASSWORD, RELAY_PASSWORD):
        assert secret.encode() not in mail.data and secret not in mail.text()
    rendered = [p for p in (platform.directory / "deploy").rglob("*") if p.is_file()]
    assert rendered and not any(RELAY_PASSWORD in p.read_text(errors="replace") for p in rendered)
    # it is in the identity service's own secrets file (0600), nowhere else the platform wrote
    secrets = platform.directory / ".mindscape" / "identity" / "secrets.yml"
    assert RELAY_PASSWORD in secrets.read_text() and secrets.stat().st_mode & 0o777 == 0o600
