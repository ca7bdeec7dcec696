"""`mindscape schema`: the JSON Schema of platform.yaml, which `init` points editors at."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from mindscape_ops.config.schema import MODELINE, SCHEMA_DIALECT

from .conftest import EXAMPLES, run_cli


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    result = run_cli("schema", cwd=tmp_path_factory.mktemp("schema"))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(found)  # a valid schema of its dialect
    return found


def errors(schema, document) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(document)]


def test_schema_names_its_dialect_title_and_purpose(schema):
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["title"] == "mindscape platform.yaml" and "mindscape validate" in schema["description"]
    assert schema["additionalProperties"] is False and schema["required"] == ["version", "project"]
    assert {"services", "security", "monitoring", "ci", "database", "backups"} <= set(schema["properties"])
    assert schema["$defs"]["Services"]["additionalProperties"] is False


@pytest.mark.parametrize("example", ["local", "minimal"])
def test_the_examples_are_valid_against_it(schema, example):
    assert errors(schema, yaml.safe_load((EXAMPLES / example / "platform.yaml").read_text())) == []


def test_it_refuses_what_validate_refuses(schema):
    document = yaml.safe_load((EXAMPLES / "minimal" / "platform.yaml").read_text())
    assert errors(schema, {**document, "servces": {}})  # unknown key
    assert errors(schema, {**document, "version": 2})
    assert errors(schema, {**document, "environment": "prod"})
    assert errors(schema, {k: v for k, v in document.items() if k != "project"})


def test_init_points_editors_at_the_schema_and_writes_it(tmp_path, schema):
    result = run_cli("init", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "demo" / "platform.yaml").read_text()
    assert text.splitlines()[0] == MODELINE == "# yaml-language-server: $schema=.mindscape/platform.schema.json"
    written = tmp_path / "demo" / ".mindscape" / "platform.schema.json"
    assert json.loads(written.read_text()) == schema  # the path in the line, relative to the file, exists
    assert errors(schema, yaml.safe_load(text)) == []  # the starter itself is valid
    # removed, `render` writes it again (it follows the installed mindscape)
    written.unlink()
    assert run_cli("render", cwd=tmp_path / "demo").returncode == 0
    assert json.loads(written.read_text()) == schema


def test_init_from_a_file_gets_the_line_too_and_keeps_its_line_numbers_in_errors(tmp_path):
    source = tmp_path / "source.yaml"
    source.write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    assert run_cli("init", "a", "--from", str(source), cwd=tmp_path).returncode == 0
    assert (tmp_path / "a" / "platform.yaml").read_text().startswith(MODELINE + "\n")
    source.write_text(source.read_text() + "bogus: 1\n")
    line = source.read_text().count("\n")
    failed = run_cli("init", "b", "--from", str(source), cwd=tmp_path)
    assert failed.returncode == 2 and f"{source}:{line}:1: bogus" in failed.stderr


def test_schema_to_a_file(tmp_path, schema):
    result = run_cli("schema", "-o", "out/s.json", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    assert json.loads((tmp_path / "out" / "s.json").read_text()) == schema


def test_keys_carry_the_references_descriptions(schema):
    from .test_docs_reference import doc_rows

    assert schema["properties"]["project"]["description"] == doc_rows()["project"].cells[-1]
    bind = schema["$defs"]["Postgres"]["properties"]["bind"]["description"]
    assert bind == doc_rows()["services.<service>.bind"].cells[-1]  # the keys every service has
    described = [p for d in [schema, *schema["$defs"].values()] for p in d.get("properties", {}).values()]
    assert sum("description" in p for p in described) >= 0.7 * len(described)


def test_the_descriptions_file_names_only_keys_the_reference_still_has():
    """Made by scripts/schema-descriptions; a key dropped from the doc must not linger."""
    from importlib.resources import files

    from .test_docs_reference import doc_rows

    made = json.loads(files("mindscape_ops.config").joinpath("descriptions.json").read_text(encoding="utf-8"))
    assert set(made) - set(doc_rows()) == set(), "run scripts/schema-descriptions"
