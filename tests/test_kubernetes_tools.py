"""The proof a cluster would otherwise give: every overlay builds with kustomize (pinned,
installed by scripts/setup-test-env), every object it yields validates STRICTLY against the
OpenAPI schemas of the three newest Kubernetes minor versions kubernetes-validate ships, what
`up --target kubernetes` applies is what kustomize builds, and no secret value reaches a
rendered file or any object but the Secret."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.kubernetes import cluster_objects
from mindscape_ops.workspace.store import Workspace

from .conftest import need
from .kubernetes_support import full_data, minimal_data, rendered_project

pytestmark = pytest.mark.tools  # kustomize, kubernetes-validate
ENVIRONMENTS = ("development", "staging", "production")
# Custom resources: not in Kubernetes' own OpenAPI; their fields are asserted in test_kubernetes_objects
CUSTOM = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "ExternalSecret": "external-secrets.io/v1",
}
VARIANTS = {
    "full": lambda: full_data(secrets={"source": "generate"}),
    "operator-external": lambda: full_data(prometheus_operator=True, secrets={"source": "external"}),
    "minimal-existing": lambda: minimal_data(secrets={"source": "existing"}, namespace="tiny"),
    "pitr-s3": lambda: pitr_data(),
}
# what a variant's render reads from the environment: backups.pitr's key and S3 keys (secrets.conf)
ENVIRONS = {
    "pitr-s3": {
        "PITR_TEST_KEY": "5a" * 32,
        "AWS_ACCESS_KEY_ID": "AKIAPITRTESTKEY00042",
        "AWS_SECRET_ACCESS_KEY": "pitr-test-secret-key-0042-aaaabbbbccccdddd",
    }
}


def pitr_data() -> dict:
    """Every service, WAL archiving to S3, encrypted: the pitr CronJobs, Role and ConfigMap."""
    data = full_data(secrets={"source": "generate"})
    data["backups"]["encryption"] = {"key_env": "PITR_TEST_KEY"}
    data["backups"]["pitr"] = {"enabled": True, "repository": "s3"}
    return data


def newest_minors(count: int = 3) -> list[str]:
    """The newest minor versions whose strict schemas kubernetes-validate ships."""
    import kubernetes_validate

    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    found = {
        tuple(map(int, m.groups()))
        for p in folder.iterdir()
        if (m := re.match(r"v(\d+)\.(\d+)\.\d+-local-strict$", p.name))
    }
    assert len(found) >= count, found
    return [f"{major}.{minor}.0" for major, minor in sorted(found)[-count:]]


def kustomize() -> str:
    path = shutil.which("kustomize")
    if path is None:
        need("kustomize is not installed (scripts/setup-test-env installs it with go install)")
    return path


_BUILT: dict[Path, str] = {}


def build(folder: Path) -> list[dict]:
    """`kustomize build` of an overlay, once per module run (fresh objects each call)."""
    if folder not in _BUILT:
        result = subprocess.run([kustomize(), "build", str(folder)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        _BUILT[folder] = result.stdout
    return [obj for obj in yaml.safe_load_all(_BUILT[folder]) if obj]


@pytest.fixture(scope="module", params=list(VARIANTS))
def project(request, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    return rendered_project(folder, VARIANTS[request.param](), ENVIRONS.get(request.param))


def overlays(project: Path) -> dict[str, Path]:
    platform = load([project / "platform.yaml"], env={}).platform
    root = project / platform.paths.deploy / "kubernetes" / "overlays"
    return {environment: root / environment for environment in ENVIRONMENTS}


def test_every_overlay_builds_and_validates_strictly(project):
    import kubernetes_validate

    versions = newest_minors()
    problems = []
    validated: set[str] = set()  # the overlays differ mostly by namespace: each distinct object once
    for environment, folder in overlays(project).items():
        objects = build(folder)
        kinds = {obj["kind"] for obj in objects}
        assert {"Namespace", "Service", "Job", "PodDisruptionBudget"} <= kinds, kinds
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"].endswith(f"-{environment}")
            if obj["kind"] in CUSTOM:
                assert obj["apiVersion"] == CUSTOM[obj["kind"]]
                continue
            same = json.dumps({**obj, "metadata": {**obj["metadata"], "namespace": None}}, sort_keys=True)
            if same in validated:
                continue
            validated.add(same)
            for version in versions:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    problems.append(f"{environment} {obj['kind']}/{obj['metadata']['name']} {version}: {exc.message}")
    assert problems == []


def test_the_stanza_job_is_built_with_pitr_only(project):
    """The Job at rollout that creates the pgBackRest stanza: in every overlay with backups.pitr
    (the strict schemas above validate it), in none without; its exec Role is in the same
    namespace, and its script keeps Kubernetes' escaping of $ through kustomize."""
    platform = load([project / "platform.yaml"], env={}).platform
    for environment, folder in overlays(project).items():
        objects = build(folder)
        jobs = [
            o for o in objects if o["kind"] == "Job" and o["metadata"]["labels"]["mindscape.io/ops"] == "pitr-stanza"
        ]
        if not platform.backups.pitr.enabled:
            assert jobs == [], environment
            continue
        (job,) = jobs
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "postgres-pod-exec"
        roles = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "postgres-pod-exec"]
        assert [r["metadata"]["namespace"] for r in roles] == [job["metadata"]["namespace"]]
        assert job["metadata"]["namespace"].endswith(f"-{environment}")
        script = pod["containers"][0]["args"][-1]
        assert "$$((i+1))" in script and "stanza-create && pgbackrest --stanza=" in script


def test_strict_validation_catches_a_wrong_field():
    """The validator really is strict: one unknown field fails it."""
    import kubernetes_validate

    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 1}], "bogus": 1},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, newest_minors()[-1], strict=True)


def _key(obj: dict) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _plain(obj: dict) -> dict:
    """A Secret as its values (kustomize writes data in base64, `up` stringData)."""
    if obj["kind"] != "Secret":
        return obj
    data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
    return {
        **{k: v for k, v in obj.items() if k not in ("data", "stringData")},
        "values": {**data, **obj.get("stringData", {})},
    }


def test_up_applies_what_kustomize_builds(project):
    """The objects `up --target kubernetes` sends are the overlay of platform.environment, field
    for field (the Secret's values included, from .mindscape/)."""
    platform = load([project / "platform.yaml"], env={}).platform
    secrets = Workspace(project).read_secrets()
    ours = {_key(o): _plain(o) for o in cluster_objects(platform, project, secrets)}
    built = {_key(o): _plain(o) for o in build(overlays(project)[platform.environment])}
    assert set(ours) == set(built)
    for key, obj in built.items():
        assert ours[key] == obj, key


def secret_values(project: Path) -> list[str]:
    """Every password and every file derived from one (verifiers, ACL hashes, init script)."""
    values = [v for v in Workspace(project).read_secrets().values() if v]
    mindscape = project / ".mindscape"
    for path in mindscape.rglob("*"):
        if path.is_file() and path.parent.name in ("pgbouncer", "redis", "initdb"):
            values += re.findall(r"SCRAM-SHA-256\$[^\"' ]+|#[0-9a-f]{64}", path.read_text())
        if path.is_file() and path.name == "secrets.conf":  # pgBackRest's cipher pass and S3 keys
            lines = path.read_text().splitlines()
            values += [line.split("=", 1)[1] for line in lines if "-key" in line or "-pass" in line]
        if path.is_file() and path.name == "jwks.json":  # the identity service's private signing keys
            values += [key["d"] for key in json.loads(path.read_text())["keys"]]
    assert values
    return values


def test_no_secret_value_in_any_rendered_file_or_object(project):
    values = secret_values(project)
    platform = load([project / "platform.yaml"], env={}).platform
    kube = project / platform.paths.deploy / "kubernetes"
    ignored = {kube / "base" / "secrets.env", *(kube / "base" / "secret-files").glob("*")}
    for path in kube.rglob("*"):
        if path.is_file() and path not in ignored:
            text = path.read_text()
            assert not [v for v in values if v in text], path
    for folder in overlays(project).values():
        for obj in build(folder):
            if obj["kind"] != "Secret":
                text = yaml.safe_dump(obj)
                assert not [v for v in values if v in text], _key(obj)


def test_the_generators_input_is_git_ignored_and_owner_only(project):
    platform = load([project / "platform.yaml"], env={}).platform
    if platform.kubernetes.secrets.source != "generate":  # nothing written, nothing to ignore
        assert not (project / platform.paths.deploy / "kubernetes" / "base" / "secrets.env").exists()
        return
    if not shutil.which("git"):
        need("git is not installed")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    base = project / platform.paths.deploy / "kubernetes" / "base"
    material = [base / "secrets.env", *(base / "secret-files").glob("*")]
    assert len(material) > 1
    for path in material:
        assert path.stat().st_mode & 0o077 == 0, path
        ignored = subprocess.run(["git", "-C", str(project), "check-ignore", "-q", str(path)])
        assert ignored.returncode == 0, f"{path} is not git-ignored"
    kept = subprocess.run(["git", "-C", str(project), "check-ignore", "-q", str(base / "kustomization.yaml")])
    assert kept.returncode == 1
