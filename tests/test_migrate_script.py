"""A migration as one round trip (mindscape_ops/migrate/script.py) and the fast path of the SQL
splitter: pure, no database."""

from __future__ import annotations

from mindscape_ops.migrate.script import compose
from mindscape_ops.migrate.sql import has_statements, split_statements

RECORD = "INSERT INTO mindscape.migrations VALUES ('1', 'a;b')"


def texts(script: str) -> list[str]:
    return [statement.text for statement in split_statements(script)]


def test_script_wraps_statements_in_one_transaction_with_the_record():
    statements = split_statements("CREATE TABLE t (x int);\nINSERT INTO t VALUES (1)")
    script = compose(statements, RECORD)
    assert texts(script.text) == [
        "BEGIN",
        "CREATE TABLE t (x int)",
        "INSERT INTO t VALUES (1)",
        RECORD,
        "COMMIT",
        "RESET ALL",
    ]
    for statement, start in zip(script.statements, script.starts, strict=True):
        assert script.text[start : start + len(statement.text)] == statement.text
    assert script.text[script.record_start :].startswith(RECORD)


def test_a_trailing_line_comment_does_not_swallow_the_record():
    # the last statement of a section may end in a `--` comment with no `;` after it
    statements = split_statements("CREATE TABLE t (x int) -- the table")
    script = compose(statements, RECORD)
    assert texts(script.text)[-3:] == [RECORD, "COMMIT", "RESET ALL"]


def test_failed_statement_by_server_position():
    statements = split_statements("SELECT 1;\nSELECT x,\n  nosuch FROM t;")
    script = compose(statements, RECORD)
    second = script.starts[1]
    nosuch = script.text.index("nosuch")
    # the server's positions are 1-based; the statement-relative one too
    assert script.failed_statement(2, nosuch + 1) == (1, nosuch - second + 1)
    # a parse error comes alone (result 0), before anything ran: the position decides
    assert script.failed_statement(0, nosuch + 1) == (1, nosuch - second + 1)


def test_failed_statement_without_position_by_result_index():
    script = compose(split_statements("SELECT 1; SELECT 1/0; SELECT 3"), RECORD)
    assert script.failed_statement(2, None) == (1, None)  # result 0 is BEGIN
    assert script.failed_statement(3, None) == (2, None)


def test_failures_outside_the_migration_belong_to_no_statement():
    script = compose(split_statements("SELECT 1"), RECORD)
    assert script.failed_statement(2, None) is None  # the record
    assert script.failed_statement(3, None) is None  # COMMIT: a deferred constraint
    assert script.failed_statement(2, script.record_start + 5) is None


def test_a_parse_error_in_the_suffix_is_the_last_statements():
    # `SELECT (1` leaves a parenthesis open: the server's parser stops in what follows it
    script = compose(split_statements("SELECT 1;\nSELECT (1"), RECORD)
    assert script.failed_statement(0, script.record_start + 3) == (1, None)
    # ... or at the `;` after it: the end of the statement, as when it ran alone
    assert script.failed_statement(0, script.record_start - 2) == (1, len("SELECT (1") + 1)


def test_splitter_fast_path_keeps_prefixed_strings_whole():
    # E'...' takes backslash escapes: the identifier run must stop before the E
    assert texts("SELECT 1 FROM t WHERE a = E'it\\'s; fine';\nSELECT 2;") == [
        "SELECT 1 FROM t WHERE a = E'it\\'s; fine'",
        "SELECT 2",
    ]
    # a word ending in e before a quote is one identifier, then a plain string
    assert texts("SELECT abce'x\\';SELECT 2") == ["SELECT abce'x\\'", "SELECT 2"]


def test_splitter_fast_path_stops_at_comments_and_dollar_quotes():
    script = "SELECT a-b, c/d -- not; a statement\n, $$;$$, x$y /* ; */ FROM t;\nSELECT 2"
    assert texts(script) == ["SELECT a-b, c/d -- not; a statement\n, $$;$$, x$y /* ; */ FROM t", "SELECT 2"]


def test_has_statements_agrees_with_splitting():
    scripts = [
        "",
        " ;\n; ",
        "-- only a comment; SELECT 1\n",
        "/* SELECT 1; */",
        "/* a */ SELECT 1",
        "-- x\n/* y */\n;",
        "SELECT '--'",
        "'--\n'",
        "  -- migrate:down is a comment\nDROP TABLE t",
    ]
    for script in scripts:
        assert has_statements(script) == bool(split_statements(script)), script
    assert not has_statements("/* SELECT 1; */\n-- SELECT 2")
