"""The postgres image's recipe adds pgBackRest to the shared Debian base (`also`). Pure."""

from __future__ import annotations

import pytest

from mindscape_ops.errors import OperationFailed
from mindscape_ops.images import rootfs
from mindscape_ops.images.recipe import load_recipes, parse_recipe


def test_postgres_image_brings_pgbackrest():
    recipes = load_recipes()
    assert recipes["postgres"].also == ("pgbackrest",)
    wanted = rootfs.packages(recipes)
    assert "pgbackrest" in wanted and wanted.count("pgbackrest") == 1
    assert wanted.index("postgresql-15") < wanted.index("pgbackrest")


def test_also_changes_the_base_and_the_image():
    base = {"version": "15", "package": "postgresql-15"}
    plain, more = parse_recipe("postgres", base, "x"), parse_recipe("postgres", {**base, "also": ["pgbackrest"]}, "x")
    assert plain.image_hash("b") != more.image_hash("b")
    assert rootfs.rootfs_hash(rootfs.packages({"postgres": plain})) != rootfs.rootfs_hash(
        rootfs.packages({"postgres": more})
    )


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"version": "15", "package": "postgresql-15", "also": "pgbackrest"}, "`also` is a list of Debian package"),
        ({"version": "15", "package": "postgresql-15", "also": ["Bad Name"]}, "`also` is a list of Debian package"),
        ({"version": "1", "go": {"module": "m", "package": "p", "version": "v1.0.0"}, "also": ["x"]}, "a Go recipe"),
    ],
)
def test_bad_also_is_refused(data, says):
    with pytest.raises(OperationFailed) as refused:
        parse_recipe("x", data, "x.toml")
    assert says in refused.value.message
