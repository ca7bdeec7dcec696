"""`mindscape logs` against hostile input, engine-free: a query cannot widen the service's
scope (its parentheses and quotes must pair, and the scope goes to the store as its own stream
filter, beside the query), and a damaged `.mindscape/audit.log` is read line by line, each bad
line skipped with a warning naming it."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from mindscape_ops.adapters import logstore as adapter
from mindscape_ops.errors import UsageError
from mindscape_ops.provision import logstore
from mindscape_ops.workspace import audit

from .conftest import run_cli

SCOPE = '"event.attrs.io.mindscape.project":="p1" AND "event.attrs.io.mindscape.service":="gateway"'


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("x) OR (_msg:*", "the ) at column 2 closes no ("),
        (") OR *", "the ) at column 1 closes no ("),
        ("x)) OR ((*", "the ) at column 2 closes no ("),
        ("(x OR y", "the ( at column 1 is not closed"),
        ('"x) OR (_msg:*', 'the quote " at column 1 is not closed'),
        ("'x\\') OR (*", "the quote ' at column 1 is not closed"),  # \' does not close it
        ('"a\\"b) OR (*', 'the quote " at column 1 is not closed'),
        ("`raw) OR (*", "the quote ` at column 1 is not closed"),
        ("x | filter y) OR (*", "the ) at column 13 closes no ("),
    ],
)
def test_a_query_whose_parentheses_or_quotes_do_not_pair_is_refused(query: str, problem: str):
    assert logstore.unbalanced(query) == problem
    with pytest.raises(UsageError, match=r"^--query: "):
        logstore.service_query("p1", "gateway", query)


@pytest.mark.parametrize(
    ("query", "scoped"),
    [
        ('"a)" OR (b)', f'{SCOPE} AND ("a)" OR (b))'),
        ("'it\\'s (' OR x", f"{SCOPE} AND ('it\\'s (' OR x)"),
        ("`C:\\dir) (` x", f"{SCOPE} AND (`C:\\dir) (` x)"),
        ("(a OR (b)) AND c | limit 3", f"{SCOPE} AND ((a OR (b)) AND c ) | limit 3"),
    ],
)
def test_a_query_that_pairs_stays_inside_the_scope(query: str, scoped: str):
    assert logstore.unbalanced(query) is None
    assert logstore.service_query("p1", "gateway", query) == scoped


def test_the_scope_is_a_stream_filter_of_the_project_and_the_service():
    assert logstore.service_stream("p1", "gateway") == (
        '_stream:{"event.attrs.io.mindscape.project"="p1","event.attrs.io.mindscape.service"="gateway"}'
    )


class _Recorder(BaseHTTPRequestHandler):
    forms: list[dict[str, list[str]]] = []

    def do_POST(self):  # noqa: N802 - the http.server interface
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.forms.append(urllib.parse.parse_qs(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"_msg":"one"}\n')

    def log_message(self, *args):
        pass


def test_the_adapter_sends_the_stream_filter_beside_the_query():
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert adapter.query(base, "x | limit 1", stream='{a="b"}') == [{"_msg": "one"}]
        assert adapter.query(base, "y") == [{"_msg": "one"}]
    finally:
        server.shutdown()
    assert _Recorder.forms[-2:] == [
        {"query": ["x | limit 1"], "extra_stream_filters": ['{a="b"}']},
        {"query": ["y"]},
    ]


def test_logs_hands_the_store_the_service_scope_whatever_the_query(tmp_path: Path, monkeypatch):
    from mindscape_ops.workspace.project import open_project

    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: p1\nservices: {victorialogs: {port: 19428}, gateway: {}}\n"
    )
    sent: list[tuple[str, str | None]] = []
    monkeypatch.setattr(logstore, "running_store", lambda project: "http://127.0.0.1:19428")
    monkeypatch.setattr(adapter, "query", lambda base, logsql, stream=None: sent.append((logsql, stream)) or [])
    project = open_project([tmp_path / "platform.yaml"])
    assert logstore.read_store(project, "gateway", "* | union (_msg:*)", None, 5) == []
    assert logstore.read_store(project, "gateway", "", "1h", "all") == []
    stream = logstore.service_stream("p1", "gateway")
    assert sent == [
        (f"{SCOPE} AND (* ) | union (_msg:*) | sort by (_time desc) limit 5", stream),
        (f"{SCOPE} AND _time:1h | sort by (_time)", stream),
    ]


def test_the_cli_refuses_an_unbalanced_query_in_one_line(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: p1\nservices: {gateway: {}}\n")
    done = run_cli("logs", "gateway", "--query", "x) OR (_msg:*", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "--query: the ) at column 2 closes no (" in done.stderr and "Traceback" not in done.stderr


# -- .mindscape/audit.log read back ------------------------------------------------------------

GOOD = {"time": "2099-01-01T00:00:00+00:00", "user": "me", "command": "up", "arguments": {}, "outcome": "ok"}


def test_each_damaged_audit_line_is_skipped_with_its_reason():
    lines = [
        json.dumps(GOOD).encode(),
        b'{"time": "2099-01-01T00:00:01+00:00", "command": "do',  # cut off
        b"[]",
        b"null",
        b'"up"',
        b'{"time": 5, "command": "up"}',
        b'{"time": "yesterday", "command": "up"}',
        b'{"time": "2099-01-01T00:00:00+00:00", "command": ["rm", "-rf"]}',
        b'{"time": "2099-01-01T00:00:00+00:00", "command": "up", "duration_s": true}',
        b'{"time": "2099-01-01T00:00:00+00:00"}',
        b"\x00\xff\xfe binary \x89PNG",
        b"[" * 100_000,
        b"",
        json.dumps({**GOOD, "command": "down", "time": "2099-01-01T00:00:02"}).encode(),  # no zone: UTC
    ]
    entries, skipped = audit.parse(b"\n".join(lines))
    assert [e["command"] for e in entries] == ["up", "down"]
    assert skipped == [
        (2, "not a JSON line (cut off?)"),
        (3, "a JSON list, not an object"),
        (4, "a JSON NoneType, not an object"),
        (5, "a JSON str, not an object"),
        (6, "its time is not a str"),
        (7, "its time is not an ISO 8601 time"),
        (8, "its command is not a str"),
        (9, "its duration_s is not a int or float"),
        (10, "no command"),
        (11, "not UTF-8 text"),
        (12, "not a JSON line (cut off?)"),
    ]
    assert audit.entry_time(entries[1]) == audit.entry_time({"time": "2099-01-01T00:00:02+00:00"})


def test_logs_mindscape_shows_the_good_entries_and_warns_of_each_bad_line(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: p1\nservices: {redis: {}}\n")
    (tmp_path / ".mindscape").mkdir()
    hostile = {**GOOD, "command": "down\x1b[2J\x1b]0;owned\x07", "arguments": {"file": "/etc/shadow"}}
    (tmp_path / ".mindscape" / "audit.log").write_bytes(
        json.dumps(GOOD).encode() + b'\n{"time": "2099-01-01T00:0\n\xff\xd8junk\n[]\n' + json.dumps(hostile).encode()
    )
    shown = run_cli("logs", "mindscape", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [GOOD, hostile]
    assert "Traceback" not in shown.stderr
    for number in (2, 3, 4):
        assert f"warning: .mindscape/audit.log:{number}: skipped" in shown.stderr
    text = run_cli("logs", "mindscape", "--tail", "1", cwd=tmp_path)
    assert text.returncode == 0 and "\x1b" not in text.stdout and "\\u001b[2J" in text.stdout
    assert "\x1b" not in text.stderr and "junk" not in text.stderr  # the bad lines are named, not echoed
