"""What building the local images asks of the engine: import a rootfs tarball, derive an image
from another (files put in, config set, committed), read labels, tag, and remove old ones.
Through the Docker SDK's low-level API of an `Engine` (adapters/docker.py, the only module
that imports `docker`), with its error translation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mindscape_ops.adapters.docker import Engine, engine_errors
from mindscape_ops.errors import MindscapeError, OperationFailed


@dataclass(frozen=True)
class Derived:
    """One image made from another: the config a `docker create` would set, files put in,
    Dockerfile-style changes applied at commit (VOLUME)."""

    ref: str
    config: Mapping[str, Any]
    labels: Mapping[str, str]
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (folder in the image, tar archive)
    changes: list[str] = field(default_factory=list)


class ImageStore:
    def __init__(self, engine: Engine | None = None) -> None:
        # an import streams ~600 MB, a commit of a big layer takes a while: a long read timeout
        self.api = (engine or Engine(timeout=900)).api

    def labels(self, ref: str) -> dict[str, str] | None:
        """The image's labels ({} without any); None when there is no such image."""
        with engine_errors(f"inspecting image {ref}"):
            rows = self.api.images(name=ref.rsplit(":", 1)[0])
        for row in rows:
            if ref in (row.get("RepoTags") or []):
                return dict(row.get("Labels") or {})
        return None

    def tags(self, repository: str) -> list[str]:
        with engine_errors(f"listing images {repository}"):
            rows = self.api.images(name=repository)
        return sorted(tag for row in rows for tag in row.get("RepoTags") or [] if tag.startswith(f"{repository}:"))

    def find_tag(self, suffix: str) -> str | None:
        """Any tag ending with `suffix` (the same content under another repository prefix)."""
        with engine_errors("listing images"):
            rows = self.api.images()
        return next((tag for row in rows for tag in row.get("RepoTags") or [] if tag.endswith(suffix)), None)

    def tag(self, image: str, ref: str) -> None:
        repository, tag = ref.rsplit(":", 1)
        with engine_errors(f"tagging {ref}"):
            self.api.tag(image, repository, tag, force=True)

    def import_tarball(self, chunks: Iterable[bytes], ref: str, changes: list[str]) -> None:
        """`docker import`: a filesystem tarball, streamed, becomes image `ref`."""
        repository, tag = ref.rsplit(":", 1)
        with engine_errors(f"importing {ref}"):
            self.api.import_image(src=iter(chunks), repository=repository, tag=tag, changes=changes, stream_src=True)

    def derive(self, image: str, derived: Derived) -> None:
        """`docker create` with the config, files put in, `docker commit`; the container is
        removed whatever happens."""
        repository, tag = derived.ref.rsplit(":", 1)
        with engine_errors(f"building {derived.ref}"):
            created = self.api.create_container(image, labels=dict(derived.labels), **derived.config)
        try:
            with engine_errors(f"building {derived.ref}"):
                for folder, archive in derived.files:
                    self.api.put_archive(created["Id"], folder, archive)
                self.api.commit(created["Id"], repository=repository, tag=tag, changes=derived.changes or None)
        finally:
            with contextlib.suppress(MindscapeError), engine_errors(f"removing the build container of {derived.ref}"):
                self.api.remove_container(created["Id"], force=True, v=True)

    def build_file(
        self, folder: str, name: str, ref: str, labels: Mapping[str, str], say: Callable[[str], None]
    ) -> None:
        """`docker build -f NAME -t REF FOLDER` (the folder is the context), each line of its log
        said; a failed build is an error with the log's last lines."""
        log: list[str] = []
        with engine_errors(f"building {ref}"):
            for chunk in self.api.build(
                path=folder, dockerfile=name, tag=ref, labels=dict(labels), rm=True, decode=True
            ):
                if "error" in chunk:
                    said = " | ".join(log[-3:])
                    raise OperationFailed(
                        f"building {ref} from {folder}/{name} failed: {str(chunk['error']).strip()}"
                        + (f" (its log ended: {said})" if said else ""),
                        "fix what the build says (its base image, its apt sources), then `mindscape up` again",
                    )
                line = str(chunk.get("stream", "")).strip()
                if line:
                    log.append(line)
                    say(line)

    def remove(self, refs: Iterable[str]) -> list[str]:
        """Remove these images (tags or ids) where the engine lets us: one still used by a
        container stays, which is fine. The ones removed."""
        removed = []
        for ref in refs:
            with contextlib.suppress(MindscapeError), engine_errors(f"removing image {ref}"):
                self.api.remove_image(ref, noprune=False)
                removed.append(ref)
        return removed

    def dangling(self, label: str) -> list[str]:
        """Untagged images carrying `label` (what earlier builds left)."""
        with engine_errors("listing images"):
            rows = self.api.images(filters={"dangling": True, "label": label})
        return [row["Id"] for row in rows]
