"""Projects sharing one bucket (and the default prefix), against moto's server on 127.0.0.1:
each lists, prunes and restores its own backups only, reads those older versions wrote into the
shared prefix when their manifest names it, and names another project's only with --project.
Also: a hanging endpoint fails `backup list` in about 10 s, and `prune --dry-run` names the
stale multipart uploads it would abort."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta

import pytest

from .conftest import run_cli, unique_project
from .test_backup_faults import manifest_for
from .test_backup_s3 import AWS_ENV, aws_env, make_bucket, s3_endpoint  # noqa: F401 - fixtures

RETENTION = "retention: {keep_last: 1, max_age: null}"


def s3_platform(directory, project: str, bucket: str, endpoint: str):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices: {{postgres: {{}}}}\n"
        f"backups: {{{RETENTION}, s3: {{bucket: {bucket}, endpoint_url: '{endpoint}'}}}}\n"
    )
    return directory


def put(client, bucket: str, prefix: str, project: str, age_days: int) -> str:
    manifest = manifest_for(project, b"data", timedelta(days=age_days))
    client.put_object(Bucket=bucket, Key=f"{prefix}{manifest.id}.backup", Body=b"data")
    client.put_object(Bucket=bucket, Key=f"{prefix}{manifest.id}.manifest.json", Body=manifest.to_json())
    return manifest.id


def keys(client, bucket: str) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_projects_sharing_a_bucket_never_see_prune_or_restore_each_others_backups(s3_endpoint, aws_env, tmp_path):  # noqa: F811
    import boto3

    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    shop = s3_platform(tmp_path / "shop", "shop", bucket, s3_endpoint)
    blog = s3_platform(tmp_path / "blog", "blog", bucket, s3_endpoint)
    shop_ids = [put(client, bucket, "mindscape/shop/", "shop", d) for d in (1, 3)]
    blog_ids = [put(client, bucket, "mindscape/blog/", "blog", d) for d in (0, 2)]  # blog's are the newest
    # written by an older version straight into the shared prefix: one of each
    old_shop = put(client, bucket, "mindscape/", "shop", 5)
    old_blog = put(client, bucket, "mindscape/", "blog", 4)
    client.put_object(Bucket=bucket, Key="mindscape/20200101T000000Z-postgres-dead.backup", Body=b"whose?")
    stale = "20200101T000000Z-postgres-cafe.backup"
    client.create_multipart_upload(Bucket=bucket, Key=f"mindscape/shop/{stale}")  # moto: initiated in 2010
    client.create_multipart_upload(Bucket=bucket, Key=f"mindscape/blog/{stale}")

    def listing(directory, *args):
        result = run_cli("backup", "list", "--json", *args, cwd=directory, env=AWS_ENV)
        assert result.returncode == 0, result.stderr
        return [b["id"] for b in json.loads(result.stdout)]

    assert listing(shop) == [*shop_ids, old_shop]
    assert listing(blog) == [*blog_ids, old_blog]
    assert listing(shop, "--project", "blog") == [*blog_ids, old_blog]  # named on purpose

    result = run_cli("backup", "restore", blog_ids[0], "--yes", cwd=shop, env=AWS_ENV)
    assert result.returncode == 2 and f"no backup {blog_ids[0]} of project shop" in result.stderr
    result = run_cli("backup", "restore", old_blog, "--yes", cwd=shop, env=AWS_ENV)
    assert result.returncode == 2 and "name it with --project blog" in result.stderr
    assert run_cli("backup", "prune", "--project", "blog", cwd=shop, env=AWS_ENV).returncode == 2

    dry = run_cli("backup", "prune", "--dry-run", cwd=shop, env=AWS_ENV)
    assert dry.returncode == 0, dry.stderr
    assert f"would abort the unfinished upload of {stale}" in dry.stderr and dry.stderr.count(stale) == 1
    assert len(client.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2  # a dry run aborts nothing

    before = keys(client, bucket)
    result = run_cli("backup", "prune", cwd=shop, env=AWS_ENV)
    assert result.returncode == 0, result.stderr
    removed = before - keys(client, bucket)
    assert removed == {
        f"{prefix}{backup_id}{suffix}"
        for prefix, backup_id in (("mindscape/shop/", shop_ids[1]), ("mindscape/", old_shop))
        for suffix in (".backup", ".manifest.json")
    }  # shop's beyond keep_last 1, the old one too; blog's and the unattributable object untouched
    uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["Key"] for u in uploads] == [f"mindscape/blog/{stale}"]
    assert listing(blog) == [*blog_ids, old_blog]


def test_a_hanging_endpoint_fails_backup_list_in_about_ten_seconds(tmp_path):
    """Something accepts connections and never answers: `check` gives up after ~10 s; so does the CLI."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])  # kept open, never answered
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    directory = s3_platform(tmp_path, "hang", "any-bucket", f"http://127.0.0.1:{port}")
    try:
        started = time.monotonic()
        result = run_cli("backup", "list", cwd=directory, env=AWS_ENV, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert result.returncode == 3 and "cannot reach the S3 endpoint" in result.stderr, result.stderr
    assert "hint: check the network" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 20, elapsed


@pytest.mark.parametrize("doing", ["reading", "listing"])
def test_a_body_cut_short_while_reading_is_no_verdict_on_the_backup(doing):
    from botocore.exceptions import IncompleteReadError

    from mindscape_ops.backup.s3 import S3Store
    from mindscape_ops.backup.stores import ReadFailed
    from mindscape_ops.config.backups import S3Store as Settings
    from mindscape_ops.errors import OperationFailed

    store = S3Store(Settings(bucket="any-bucket"))
    with pytest.raises(OperationFailed) as caught, store._errors(doing):
        raise IncompleteReadError(actual_bytes=10, expected_bytes=20)
    assert isinstance(caught.value, ReadFailed) == (doing == "reading")


def test_reading_a_backup_whose_data_is_gone_says_so(s3_endpoint, aws_env):  # noqa: F811
    """Missing data is the backup's own fault (a verdict), not a read error."""
    from .test_backup_s3 import store_for

    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    with pytest.raises(FileNotFoundError):
        b"".join(store_for(s3_endpoint, bucket).read("20260101T000000Z-postgres-0000.backup"))
