"""The local images' recipes and the decisions about them, engine-free: recipes read and
refused, the per-image hash, which images a platform selects, what `up` builds first, what is
said before a build, what stops a build before it starts. (The recipes inside the wheel:
tests/test_cli_project.py.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.images import choice
from mindscape_ops.images.recipe import RECIPES, debian_version_matches, load_recipes, parse_recipe

from .conftest import EXAMPLES, local_image_refs

PREFIX = "mindscape-local"


@pytest.fixture(scope="module")
def recipes():
    return load_recipes()


def test_every_shipped_recipe_loads_and_the_go_ones_are_those_debian_lacks(recipes):
    assert {name for name, r in recipes.items() if r.go} == {"identity", "jaeger", "victorialogs", "memcached_exporter"}
    assert recipes["jaeger"].go.mode == "tool" and recipes["jaeger"].go.replace
    assert recipes["postgres"].package == "postgresql-15" and recipes["postgres"].source == "debian"
    # the two stores' estimates are what a cold build costs on 2 cores; Jaeger's is minutes
    assert recipes["victorialogs"].estimate <= 60 < 300 <= recipes["jaeger"].estimate
    # every image examples/local uses (tracing.yaml's jaeger included) has a recipe
    tracing = EXAMPLES / "local" / "tracing.yaml"
    import yaml

    refs = {
        *local_image_refs().values(),
        *(s["image"] for s in yaml.safe_load(tracing.read_text())["services"].values()),
    }
    assert refs <= {r.tag(PREFIX) for r in recipes.values()}


def test_a_recipe_becomes_the_image_config_docker_create_would_give(recipes):
    config = recipes["postgres"].config()
    assert config["entrypoint"] == ["/usr/local/bin/postgres-entrypoint"] and config["command"] == ["postgres"]
    assert config["environment"]["PGDATA"] == "/var/lib/postgresql/data" and config["stop_signal"] == "SIGINT"
    assert recipes["gateway_exporter"].config()["ports"] == [3903, (5140, "udp")]
    assert (
        recipes["node_exporter"].config()["command"] is None and recipes["node_exporter"].config()["user"] == "nobody"
    )


GO = {"module": "example.com/m", "package": "cmd/x", "version": "v1.5.0"}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"version": "1.5", "go": {**GO, "mode": "vendor"}}, "mode must be install or tool"),
        ({"version": "2.0", "go": GO}, "does not start with the tag 2.0"),
        ({"version": "2.13.0", "go": {**GO, "release": "v2.12.0"}}, "release v2.12.0 does not start"),
        ({"version": "1.5", "go": {"module": "example.com/m", "version": "v1.5.0"}}, "missing: package"),
        ({"version": "1.5", "package": "foo", "go": GO}, "either `package` (Debian) or a [go] table"),
        ({"version": "1.5"}, "either `package`"),
        ({"package": "foo"}, "`version`"),
        ({"version": "1", "package": "foo", "expose": [9090]}, "`expose` is a list of ports as strings"),
        ({"version": "1", "package": "foo", "entrypoint": "/bin/x"}, "`entrypoint` is a list of strings"),
        ({"version": "1", "package": "foo", "estimate": 0}, "`estimate` is seconds"),
        ({"version": "1", "package": "foo", "volumes": "/x"}, "unknown key(s) volumes"),
        ({"version": "1.5", "go": {**GO, "binary": "bin/x"}}, "absolute path"),
        ({"version": "1.5", "go": {**GO, "replace": ["no-equals"]}}, "OLD=NEW@VERSION"),
    ],
)
def test_a_bad_recipe_is_refused_with_its_file_and_reason(data, words):
    with pytest.raises(OperationFailed) as refused:
        parse_recipe("bad", data, "bad.toml")
    assert refused.value.message.startswith("recipe bad.toml: ") and words in refused.value.message


def test_a_bad_recipe_stops_loading_before_anything_is_built(tmp_path: Path):
    for path in RECIPES.glob("*.toml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "bad.toml").write_text('version = "1.5"\n[go]\nmodule = "example.com/m"\nversion = "v1.5.0"\n')
    with pytest.raises(OperationFailed, match=r"recipe bad\.toml: a Go recipe sets module, package and version"):
        load_recipes(tmp_path)
    (tmp_path / "bad.toml").write_text("version = \n")
    with pytest.raises(OperationFailed, match=r"recipe bad\.toml: not valid TOML"):
        load_recipes(tmp_path)


def test_the_hash_is_per_image_so_one_changed_recipe_rebuilds_that_image_alone(recipes):
    before = {name: r.image_hash("base1") for name, r in recipes.items()}
    data = tomllib.loads((RECIPES / "redis.toml").read_text())
    data["cmd"] = ["redis-server", "--save", ""]
    changed = {**recipes, "redis": parse_recipe("redis", data, "redis.toml")}
    after = {name: r.image_hash("base1") for name, r in changed.items()}
    assert [name for name in before if before[name] != after[name]] == ["redis"]
    # a comment is not the recipe: the hash covers the data as read
    commented = parse_recipe("redis", tomllib.loads("# new comment\n" + (RECIPES / "redis.toml").read_text()), "x")
    assert commented.image_hash("base1") == before["redis"]
    # a new base (Debian packages, our files, the builder) rebuilds every image
    assert all(r.image_hash("base2") != before[name] for name, r in recipes.items())


def test_a_platform_without_jaeger_never_selects_it(recipes):
    images = list(local_image_refs().values())
    chosen = {r.service for r in choice.select(recipes, [], False, images, PREFIX)}
    assert "jaeger" not in chosen and "victorialogs" in chosen
    assert chosen == set(local_image_refs())
    # official images and local ones of another version have no recipe: not ours to build
    other = ["postgres:16", "mindscape-local/postgres:14", "mindscape-local/redis:7"]
    assert [r.service for r in choice.select(recipes, [], False, other, PREFIX)] == ["redis"]
    assert "jaeger" in {r.service for r in choice.select(recipes, ["jaeger"], False, None, PREFIX)}
    assert len(choice.select(recipes, [], True, None, PREFIX)) == len(recipes)


def test_selection_refuses_what_it_cannot_mean(recipes):
    with pytest.raises(UsageError, match="no local image recipe for: grafana"):
        choice.select(recipes, ["grafana"], False, None, PREFIX)
    with pytest.raises(UsageError, match="not both"):
        choice.select(recipes, ["redis"], True, None, PREFIX)
    with pytest.raises(UsageError, match="no platform.yaml"):
        choice.select(recipes, [], False, None, PREFIX)


def test_up_builds_only_the_missing_local_images_of_the_services_it_starts(recipes):
    images = [
        "mindscape-local/postgres:15",
        "mindscape-local/redis:7",
        "grafana/grafana:11",
        "mindscape-local/jaeger:2.13.0",
    ]
    present = {"mindscape-local/postgres:15": True, "mindscape-local/redis:7": False}
    built = choice.missing_for_up(recipes, images, present, PREFIX)
    assert [r.service for r in built] == ["redis", "jaeger"]  # grafana: no recipe, pulled as before
    assert choice.missing_for_up(recipes, images[:1], present, PREFIX) == []
    # another prefix (tests use their own) is matched as the prefix says
    assert [r.service for r in choice.missing_for_up(recipes, ["t1/redis:7"], {}, "t1")] == ["redis"]
    assert choice.missing_for_up(recipes, ["t1/redis:7"], {}, PREFIX) == []


def test_what_is_built_depends_on_the_images_state(recipes):
    wanted = [recipes["redis"], recipes["postgres"]]
    states = {"redis": choice.BUILT, "postgres": choice.STALE}
    assert choice.to_build(wanted, states) == [recipes["postgres"]]
    assert choice.to_build(wanted, states, force=True) == wanted
    assert choice.state(None, "h1") == choice.MISSING
    assert choice.state({"io.mindscape.recipe-hash": "h1"}, "h1") == choice.BUILT
    assert choice.state({"io.mindscape.recipe-hash": "h0"}, "h1") == choice.STALE


def test_the_estimate_is_said_before_a_build(recipes):
    wanted = [recipes["jaeger"], recipes["victorialogs"], recipes["redis"], recipes["postgres"]]
    said = dict(choice.announcement(wanted, PREFIX, base_cached=False, binaries_cached=["victorialogs"]))
    assert said["jaeger"] == (
        "building mindscape-local/jaeger:2.13.0 from its Go module: about 10 min on 2 cores, once; cached afterwards"
    )
    assert said["victorialogs"] == "building mindscape-local/victorialogs:1.52 from its cached Go binary (seconds)"
    # one line for the images of the one Debian base, said once
    assert said[None] == (
        "building 2 images (redis, postgres) from Debian packages: about 2 min on 2 cores for the shared Debian "
        "base, once; cached afterwards"
    )
    alone = choice.announcement([recipes["redis"]], PREFIX, base_cached=True, binaries_cached=[])
    assert alone == [(None, "building mindscape-local/redis:7 from the cached Debian base (seconds)")]
    assert "about 30 s" in dict(choice.announcement([recipes["victorialogs"]], PREFIX, True, []))["victorialogs"]
    assert choice.duration(89) == "89 s" and choice.duration(600) == "10 min"


@pytest.mark.parametrize(
    ("tag", "debian", "ok"),
    [("7", "5:7.0.15-1~deb12u7", True), ("15", "15.18-0+deb12u1", True), ("1", "1.7-2.1", True),
     ("3.0", "3.0.0~rc50-1+b6", True), ("16", "15.18-0+deb12u1", False), ("1", "10.2-1", False)],
)  # fmt: skip
def test_the_debian_version_must_start_with_the_tag(tag, debian, ok):
    assert debian_version_matches(tag, debian) is ok


class NoImages:
    """An engine holding none of our images."""

    def labels(self, ref):
        return None

    def find_tag(self, suffix):
        return None


def builder(monkeypatch, tmp_path: Path):
    from mindscape_ops.images.build import Builder

    monkeypatch.setenv("MINDSCAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MINDSCAPE_LOCAL_IMAGES", raising=False)
    return Builder(lambda text: None, store=NoImages())


def test_without_root_and_no_cached_base_the_build_refuses_before_starting(monkeypatch, tmp_path: Path, recipes):
    from mindscape_ops.errors import EnvironmentUnusable

    made = builder(monkeypatch, tmp_path)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(EnvironmentUnusable) as refused:
        made.preflight([recipes["redis"]])
    assert "debootstrap as root" in refused.value.message
    assert refused.value.hint.startswith("run `sudo mindscape images build redis`")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    made.preflight([recipes["redis"]])  # as root: debootstrap will make it


def test_without_go_a_go_image_is_refused_before_starting(monkeypatch, tmp_path: Path, recipes):
    from mindscape_ops.errors import EnvironmentUnusable
    from mindscape_ops.images import gobuild

    made = builder(monkeypatch, tmp_path)
    monkeypatch.setattr(gobuild, "go_version", lambda: None)
    with pytest.raises(EnvironmentUnusable) as refused:
        made.preflight([recipes["jaeger"]])
    assert "no go command" in refused.value.message and "mindscape images build jaeger" in refused.value.hint
    made.preflight([recipes["redis"]])  # a Debian image needs no Go


def test_a_cached_go_binary_needs_no_go_rebuild(monkeypatch, tmp_path: Path, recipes):
    from mindscape_ops.images import gobuild

    monkeypatch.setattr(gobuild, "go_version", lambda: "go1.99")
    recipe = recipes["victorialogs"]
    path = gobuild.binary_path(tmp_path, recipe.go, "go1.99")
    assert not gobuild.is_built(tmp_path, recipe)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x7fELF")
    assert gobuild.is_built(tmp_path, recipe) and gobuild.build(tmp_path, recipe) == path
    # another Go version, flags or module version is another binary
    assert gobuild.binary_path(tmp_path, recipe.go, "go1.98") != path


class Item:
    def __init__(self, fixtures: list[str], engine: bool, module: str = "test_x") -> None:
        self.fixturenames, self.engine, self.nodeid = fixtures, engine, f"tests/{module}.py::test_y"

    def get_closest_marker(self, name: str):
        return object() if name == "engine" and self.engine else None


def test_the_longest_units_run_first_and_the_engine_free_modules_fill_in_last():
    """ALONE (the longest unit) first, the longest engine modules next, then the engine ones,
    those waiting for a Go-built image (built in the background meanwhile), and the many short
    engine-free modules last, for the worker that frees up first."""
    from .conftest import _run_order

    free = _run_order([Item(["tmp_path"], False)])
    engine = _run_order([Item([], False), Item(["docker_client"], True)])  # the module moves whole
    go = _run_order([Item(["docker_client"], True), Item(["go_image", "docker_client"], True)])
    longest = _run_order([Item(["docker_client"], True, "test_pitr_s3_engine")])
    alone = [_run_order([Item(f, e, "test_identity_engine")]) for f, e in ((["tmp_path"], False), ([], True))]
    alone_go = _run_order([Item(["go_image"], True, "test_identity_engine")])
    assert alone[0] < alone[1] < alone_go < longest < engine < go < free


def test_xdist_hands_out_units_in_the_collections_order_not_the_most_tests_first():
    """xdist's default puts the modules with the most tests first: the longest units, which have
    few tests, would start last and leave one worker running them alone."""
    from types import SimpleNamespace

    from .conftest import pytest_xdist_make_scheduler

    option = SimpleNamespace(dist="loadfile", loadscopereorder=True, tx=["2*popen"], maxschedchunk=None)
    config = SimpleNamespace(option=option, getvalue=lambda name: getattr(option, name))
    scheduler = pytest_xdist_make_scheduler(config, log=SimpleNamespace(loadscopesched=lambda *_: None))
    collection = [
        "tests/test_pitr_faults_engine.py::test_a",
        "tests/test_identity_engine.py::test_b",
        "tests/test_pitr_s3_engine.py::test_c",
        *(f"tests/test_render.py::test_{n}" for n in range(20)),
        *(f"tests/test_schema.py::test_{n}" for n in range(5)),
    ]
    sent: dict[str, list[str]] = {}

    class Node:
        def __init__(self, name: str) -> None:
            self.name, self.gateway, self.shutting_down = name, SimpleNamespace(id=name), False

        def send_runtest_some(self, indexes: list[int]) -> None:
            sent.setdefault(self.name, []).extend(collection[i] for i in indexes)

        def shutdown(self) -> None:
            sent.setdefault(self.name, []).append("shutdown")

    for name in ("gw0", "gw1"):
        node = Node(name)
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    assert sent["gw0"][:2] == collection[:2]  # the ALONE unit first: both of its modules, one worker
    assert sent["gw1"][0] == collection[2]  # the longest engine module, not the 20-test one


def test_the_repository_script_is_the_products_command():
    import subprocess

    from .conftest import REPO

    done = subprocess.run([REPO / "scripts" / "build-local-images", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "images build" in done.stdout and "--all" in done.stdout
    refused = subprocess.run([REPO / "scripts" / "build-local-images", "redis"], capture_output=True, text=True)
    assert refused.returncode == 2 and "not both" in refused.stderr  # it is --all already


@pytest.mark.parametrize("fails_at", ["debootstrap", "chroot"])
def test_a_failed_or_interrupted_debootstrap_leaves_no_process_running_in_the_rootfs(monkeypatch, tmp_path, fails_at):
    """Whatever stops the base's making (a failed chroot step, Ctrl-C during debootstrap),
    a daemon a package script started in the rootfs is killed before the folder goes."""
    import subprocess

    from mindscape_ops.images import rootfs

    events: list[str] = []

    def run(argv, **_kwargs):
        events.append(argv[0])
        if argv[0] == "debootstrap":
            Path(argv[-2]).mkdir()
        if argv[0] == fails_at == "debootstrap":
            raise KeyboardInterrupt
        if argv[0] == fails_at == "chroot":
            raise subprocess.CalledProcessError(1, argv)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(rootfs, "_need_debootstrap", lambda say: None)
    monkeypatch.setattr(rootfs, "find_mirror", lambda suite: "https://me:t0ken@deb.example.org/debian")
    monkeypatch.setattr(rootfs.subprocess, "run", run)
    monkeypatch.setattr(rootfs, "kill_processes_in", lambda root: events.append(f"kill {root.name}"))
    said: list[str] = []
    with pytest.raises((KeyboardInterrupt, OperationFailed)):
        rootfs._debootstrap(None, "unused/base:rootfs-x", tmp_path, "x", ["ca-certificates"], said.append)
    assert events[-1] == "kill rootfs", events
    assert "https://me:***@deb.example.org/debian" in said[0] and "t0ken" not in " ".join(said)  # apt's credentials
    assert [p.name for p in tmp_path.iterdir()] == ["debootstrap.log"]  # the work folder went


class _Importing:
    """An engine's image store that takes the tarball (or refuses it midway) and keeps track."""

    def __init__(self, refuse: bool) -> None:
        self.refuse, self.imported, self.removed = refuse, [], []

    def import_tarball(self, chunks, ref, changes) -> None:
        for _chunk in chunks:
            if self.refuse:
                raise OperationFailed("importing: the engine refused")
        self.imported.append(ref)

    def remove(self, refs) -> list[str]:
        self.removed += list(refs)
        return list(refs)


@pytest.mark.parametrize("refuse", [False, True])
def test_a_failed_import_of_the_base_leaves_no_partial_tarball_nor_image(tmp_path: Path, refuse: bool):
    """tar failing (here: its folder is gone) or the engine refusing: neither the cache nor the
    engine keeps what was taken, so a later build never finds a base that misses files."""
    from mindscape_ops.images import rootfs

    cache, target = tmp_path / "cache", tmp_path / "rootfs"
    cache.mkdir()
    (cache / "rootfs-x.versions").write_text("redis=5:7.0.15-1\n")
    if refuse:
        target.mkdir()
        (target / "file").write_bytes(b"x" * 100)
    store = _Importing(refuse)
    with pytest.raises(OperationFailed):
        rootfs._import_and_cache(store, target, "p/base:rootfs-x", cache, "x")  # type: ignore[arg-type]
    assert sorted(p.name for p in cache.iterdir()) == ["rootfs-x.versions"]
    assert store.imported == store.removed  # what the engine took is removed
