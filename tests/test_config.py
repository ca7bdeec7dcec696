"""platform.yaml loading: defaults, interpolation, merging, and a corpus of broken files
that must each give exit 2 and `file:LINE:COL: path: message` lines, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.errors import ConfigError, UsageError
from mindscape_ops.settings.types import Duration, Size, check_cron

from .conftest import EXAMPLES, run_cli

HEAD = "version: 1\nproject: shop\n"


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load([path], env=env or {})
    return caught.value.problems


def test_minimal_example_is_a_complete_platform():
    text = (EXAMPLES / "minimal" / "platform.yaml").read_text()
    assert len([line for line in text.splitlines() if not line.startswith("#")]) <= 5
    platform = load([EXAMPLES / "minimal" / "platform.yaml"], env={}).platform
    assert list(platform.services.enabled()) == ["postgres", "redis", "prometheus"]
    assert platform.services.postgres.port == 5432 and platform.services.postgres.database == "app"
    assert platform.security.rate_limit.status == 429 and platform.ci.coverage_threshold == 90


@pytest.mark.parametrize("example", ["minimal", "full", "local"])
def test_examples_load(example):
    assert load([EXAMPLES / example / "platform.yaml"], env={}).platform.version == 1


def test_bare_service_key_means_enabled(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(HEAD + "services:\n  postgres:\n  redis: {enabled: false}\n")
    assert list(load([path], env={}).platform.services.enabled()) == ["postgres"]


def test_interpolation_from_environment(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(
        HEAD
        + "services:\n  postgres: {port: '${PG_PORT}', user: '${PG_USER:-owner}', database: 'db$$x'}\n".replace(
            "db$$x", "${DB:-shop}"
        )
    )
    platform = load([path], env={"PG_PORT": "6543"}).platform
    assert platform.services.postgres.port == 6543
    assert platform.services.postgres.user == "owner"
    assert platform.services.postgres.database == "shop"


def test_dollar_dollar_is_a_literal_dollar(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(HEAD + "security:\n  headers:\n    content_security_policy: \"default-src 'self' $$x\"\n")
    assert load([path], env={}).platform.security.headers.content_security_policy == "default-src 'self' $x"


def test_unset_variable_is_reported_with_position(tmp_path):
    (problem,) = problems_of(tmp_path, HEAD + "services:\n  postgres: {user: '${NOPE}'}\n")
    assert problem.startswith(f"{tmp_path / 'platform.yaml'}:4:20: services.postgres.user: variable NOPE is not set")


def test_later_files_override_earlier_ones(tmp_path):
    base = tmp_path / "platform.yaml"
    base.write_text(
        HEAD + "services:\n  postgres: {port: 5432, database: app}\n  redis: {}\n"
        "security:\n  cors: {allowed_origins: ['https://a.example.com']}\n"
    )
    override = tmp_path / "platform.prod.yaml"
    override.write_text(
        "environment: production\nservices:\n  postgres: {port: 6000}\n"
        "security:\n  cors: {allowed_origins: ['https://b.example.com']}\n"
    )
    platform = load([base, override], env={}).platform
    assert platform.environment == "production"
    assert platform.services.postgres.port == 6000 and platform.services.postgres.database == "app"
    assert platform.services.redis is not None
    assert platform.security.cors.allowed_origins == ["https://b.example.com"]


def test_bare_service_in_a_later_file_keeps_earlier_settings(tmp_path):
    base = tmp_path / "platform.yaml"
    base.write_text(HEAD + "services:\n  postgres: {port: 6000}\n")
    override = tmp_path / "override.yaml"
    override.write_text("services:\n  postgres:\n  redis:\n")
    platform = load([base, override], env={}).platform
    assert platform.services.postgres.port == 6000 and platform.services.redis is not None


def test_error_points_into_the_file_that_holds_the_value(tmp_path):
    base = tmp_path / "platform.yaml"
    base.write_text(HEAD + "services:\n  postgres: {}\n")
    override = tmp_path / "override.yaml"
    override.write_text("services:\n  postgres: {port: 99999}\n")
    with pytest.raises(ConfigError) as caught:
        load([base, override], env={})
    assert caught.value.problems[0].startswith(f"{override}:2:20: services.postgres.port:")


def test_every_problem_is_reported_at_once(tmp_path):
    problems = problems_of(
        tmp_path, HEAD + "servces: {}\nci: {coverage_threshold: 150}\nbackups: {schedule: 'every day'}\n"
    )
    assert len(problems) == 3
    assert "did you mean 'services'?" in problems[0]


def test_rules_across_the_platform_are_reported_with_single_value_errors(tmp_path):
    problems = problems_of(
        tmp_path,
        HEAD + "services:\n  postgres: {port: 7000, databse: x}\n  redis: {port: 7000, maxmemory: lots}\n"
        "  pgbouncer: {pool_mode: nope}\n",
    )
    assert [p.split(": ")[1] for p in problems] == [
        "services.postgres.databse",
        "services.redis.port",
        "services.redis.maxmemory",
        "services.pgbouncer.pool_mode",
    ]
    assert "port 7000 is already used by services.postgres" in problems[1]


def test_a_dropped_value_does_not_make_a_rule_misfire(tmp_path):
    # postgres's port is invalid: its default (5432) must not be "duplicated" by redis
    problems = problems_of(tmp_path, HEAD + "services:\n  postgres: {port: abc}\n  redis: {port: 5432}\n")
    assert len(problems) == 1 and "services.postgres.port: 'abc' is not a port" in problems[0]


def test_values_parse_to_units():
    assert Duration.parse("1h30m").seconds == 5400
    assert Duration.parse("250ms").seconds == 0.25
    assert Duration.parse(90) == "90s"
    assert Size.parse("256MB").bytes == 256 * 1024**2 and Size.parse("10mb").nginx == "10m"
    assert check_cron("*/15 2-4 * * 1-5") == "*/15 2-4 * * 1-5"
    for bad in ("* * * *", "60 * * * *", "5-1 * * * *", "*/0 * * * *", "a * * * *"):
        with pytest.raises(ValueError):
            check_cron(bad)


def test_merge_keys_follow_yaml_precedence(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(
        HEAD + "services:\n  postgres: &pg {port: 5433}\n"
        "  redis: {<<: [{port: 6000}, {port: 6001, maxmemory: 64mb}], maxmemory: 32mb}\n"
        "  pgbouncer: {<<: *pg, port: 6400}\n"
    )
    services = load([path], env={}).platform.services
    assert services.redis.port == 6000  # the earlier merged mapping wins
    assert services.redis.maxmemory.bytes == 32 * 1024**2  # a key written in the mapping wins over merged ones
    assert services.pgbouncer.port == 6400


def test_missing_file_and_directory_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load([tmp_path / "nope.yaml"], env={})
    with pytest.raises(UsageError, match="is a directory"):
        load([tmp_path], env={})


# -- the broken corpus, through the real CLI --------------------------------------------------


def _alias_ladder(item: str, step: str, levels: int = 9) -> str:
    """`levels` anchors, each naming the previous one 9 times: 9**levels values from a few lines."""
    lines = [f"l0: &l0 {item}"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} " + step.replace("PREV", f"*l{level - 1}"))
    return "\n".join(lines) + "\n"


BOMB = _alias_ladder("[lol]", "[" + ", ".join(["PREV"] * 9) + "]")
MERGE_BOMB = _alias_ladder("{x: 1}", "{<<: [" + ", ".join(["PREV"] * 9) + "], y: PREV}")

CORPUS: dict[str, tuple[str | bytes, list[str]]] = {
    "bad-yaml": (HEAD + "services: {postgres: [\n", [r":4:\d+: \(yaml\): "]),
    "tab-indent": (HEAD + "services:\n\tpostgres: {}\n", [r":4:1: \(yaml\): "]),
    "wrong-type-port": (
        HEAD + "services:\n  postgres: {port: abc}\n",
        [r":4:20: services\.postgres\.port: 'abc' is not a port"],
    ),
    "wrong-type-mapping": (HEAD + "services: [postgres]\n", [r":3:11: services: must be a mapping"]),
    "bool-as-port": (HEAD + "services:\n  redis: {port: true}\n", [r"services\.redis\.port: True is not a port"]),
    "unknown-key": (
        HEAD + "services:\n  postgres: {databse: x}\n",
        [r":4:14: services\.postgres\.databse: unknown key 'databse'; did you mean 'database'\?"],
    ),
    "unknown-top-key": (
        HEAD + "monitorng: {}\n",
        [r":3:1: monitorng: unknown key 'monitorng'; did you mean 'monitoring'\?"],
    ),
    "bad-project-traversal": ("version: 1\nproject: ../etc\n", [r":2:10: project: '\.\./etc' is not a valid name"]),
    "bad-project-newline": ('version: 1\nproject: "a\\nb"\n', [r"project: 'a\\nb' is not a valid name"]),
    "bad-project-shell": ("version: 1\nproject: 'x;rm -rf'\n", [r"project: 'x;rm -rf' is not a valid name"]),
    "bad-db-name": (
        HEAD + "services:\n  postgres: {database: 'app; DROP'}\n",
        [r"services\.postgres\.database: .* is not a valid identifier"],
    ),
    "bad-image": (
        HEAD + "services:\n  redis: {image: 'redis:7 --evil'}\n",
        [r"services\.redis\.image: .* is not an image reference"],
    ),
    "bad-upstream": (
        HEAD + "services:\n  gateway: {upstream: 'http://x;y'}\n",
        [r"services\.gateway\.upstream: .* is not an http\(s\) URL"],
    ),
    "csp-newline": (
        HEAD + 'security:\n  headers: {content_security_policy: "a\\nb"}\n',
        [r"content_security_policy: must be a single line"],
    ),
    "bad-port-range": (
        HEAD + "services:\n  postgres: {port: 70000}\n",
        [r"services\.postgres\.port: 70000 is not a port"],
    ),
    "port-zero": (HEAD + "services:\n  postgres: {port: 0}\n", [r"services\.postgres\.port: 0 is not a port"]),
    "duplicate-ports": (
        HEAD + "services:\n  postgres: {port: 7000}\n  redis: {port: 7000}\n",
        [r":5:17: services\.redis\.port: port 7000 is already used by services\.postgres"],
    ),
    "bad-cron": (HEAD + "backups: {schedule: '0 25 * * *'}\n", [r":3:21: backups\.schedule: hour 25 is out of range"]),
    "bad-duration": (
        HEAD + "services:\n  postgres: {health: {timeout: 5 minutes}}\n",
        [r"services\.postgres\.health\.timeout: '5 minutes' is not a duration"],
    ),
    "bad-size": (
        HEAD + "services:\n  redis: {maxmemory: lots}\n",
        [r"services\.redis\.maxmemory: 'lots' is not a size"],
    ),
    "missing-project": ("version: 1\n", [r":1:1: project: is required"]),
    "wrong-version": ("version: 2\nproject: x\n", [r":1:10: version: Input should be 1"]),
    "duplicate-key": (HEAD + "services: {}\nservices: {}\n", [r":4:1: services: is defined twice"]),
    "top-level-list": ("- a\n- b\n", [r":1:1: \(top level\): the top level must be a mapping"]),
    "empty-file": ("", [r":1:1: \(file\): is empty"]),
    "comments-only": ("# nothing here\n", [r":1:1: \(file\): is empty"]),
    "binary-file": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", [r":1:1: \(file\): is not UTF-8 text"]),
    "nul-in-text": ("version: 1\x00\n", [r"\(yaml\): "]),
    "needs-dependency": (HEAD + "services:\n  pgbouncer: {}\n", [r"services\.pgbouncer: needs services\.postgres"]),
    "bad-origin": (
        HEAD + "security:\n  cors: {allowed_origins: ['*']}\n",
        [r"allowed_origins\[0\]: '\*' is not an origin"],
    ),
    "unknown-role-key": (
        HEAD + "security:\n  auth:\n    roles:\n      admin: {permisions: []}\n",
        [r"security\.auth\.roles\.admin\.permisions: unknown key .* did you mean 'permissions'"],
    ),
    "bad-enum": (
        HEAD + "services:\n  redis: {maxmemory_policy: lru}\n",
        [r"services\.redis\.maxmemory_policy: Input should be"],
    ),
    "key-not-text": (HEAD + "services:\n  1: {}\n", [r":4:3: services: key 1 must be text"]),
    "alias-loop-mapping": (
        HEAD + "services: &a {postgres: *a}\n",
        [r":3:15: services\.postgres: an alias refers to itself"],
    ),
    "alias-loop-list": (HEAD + "rules: &a [*a]\n", [r":3:8: rules\[0\]: an alias refers to itself"]),
    "alias-loop-merge": (HEAD + "services: &a {<<: *a}\n", [r":3:1: services: an alias refers to itself"]),
    "alias-bomb": (HEAD + BOMB, [r"more than 100000 values once aliases are expanded"]),
    "merge-bomb": (HEAD + MERGE_BOMB, [r"more than 100000 values once aliases are expanded"]),
    "merge-of-scalar": (HEAD + "services: {<<: 1}\n", [r":3:16: services: `<<:` merges a mapping"]),
    "unknown-tag": ("version: 1\nproject: !shell p\n", [r":2:10: \(yaml\): could not determine a constructor"]),
    "deep-nesting": (HEAD + "x: " + "[" * 3000 + "]" * 3000 + "\n", [r":1:1: \(yaml\): is nested too deeply"]),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_file_gives_positions_and_exit_2(tmp_path, case):
    text, expected = CORPUS[case]
    path = tmp_path / "platform.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = run_cli("validate", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for pattern in expected:
        assert re.search(
            r"platform\.yaml" + (pattern if pattern.startswith(":") else r":\d+:\d+: .*" + pattern), output
        ), f"{pattern!r} not in:\n{output}"


@pytest.mark.parametrize("target", ["missing", "directory"])
def test_unusable_paths_give_exit_2(tmp_path, target):
    path = tmp_path / "nope.yaml" if target == "missing" else tmp_path
    result = run_cli("validate", "-f", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "hint:" in result.stderr


def test_valid_file_passes_validate(tmp_path):
    (tmp_path / "platform.yaml").write_text((EXAMPLES / "full" / "platform.yaml").read_text())
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "fullshop" in result.stdout


def test_mindscape_file_env_is_used(tmp_path):
    result = run_cli("validate", cwd=tmp_path, env={"MINDSCAPE_FILE": str(EXAMPLES / "minimal" / "platform.yaml")})
    assert result.returncode == 0 and "minimal" in result.stdout


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("backups: {s3: {bucket: my-backups, endpoint_url: 'http://127.0.0.1:99999'}}\n", "backups.s3.endpoint_url"),
        ("services:\n  gateway: {upstream: 'http://api:0'}\n", "services.gateway.upstream"),
    ],
)
def test_a_url_port_outside_1_to_65535_is_a_config_error(tmp_path, text, path):
    (problem,) = problems_of(tmp_path, HEAD + text)
    assert path in problem and "is not an http(s) URL" in problem
    load_ok = tmp_path / "ok.yaml"
    load_ok.write_text(HEAD + text.replace("99999", "65535").replace("api:0", "api:8000"))
    load([load_ok], env={})
