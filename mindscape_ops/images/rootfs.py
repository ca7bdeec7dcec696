"""The shared Debian base of the local images: one debootstrapped rootfs holding every Debian
recipe's package, cached as a tarball (so only the first build needs root and the network),
imported into the engine; then our files (`rootfs/`: entrypoints, default configs) laid on top
as a small second layer, so editing them costs no new debootstrap."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from mindscape_ops.adapters.image_build import Derived, ImageStore
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed
from mindscape_ops.images.mirror import find_mirror, shown
from mindscape_ops.images.recipe import HERE, Recipe

SUITE = "bookworm"
DEBOOTSTRAP_ARGS = ["--variant=minbase", "--components=main"]
BASE_PACKAGES = ["ca-certificates", "curl", "wget"]
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREPARE = HERE / "prepare-rootfs.sh"
OVERLAY = HERE / "rootfs"
BUILDER = "2"  # bumped when the way images are made changes: every image is rebuilt once
LABEL_ROOTFS = "io.mindscape.rootfs-hash"
LABEL_VERSIONS = "io.mindscape.package-versions"

Say = Callable[[str], None]


def packages(recipes: dict[str, Recipe]) -> list[str]:
    return [*BASE_PACKAGES, *(name for r in recipes.values() if r.package for name in (r.package, *r.also))]


def rootfs_hash(wanted: list[str]) -> str:
    """What goes into the debootstrapped tarball, and nothing else."""
    text = f"{SUITE} {' '.join(DEBOOTSTRAP_ARGS)} {' '.join(wanted)}\n".encode() + PREPARE.read_bytes()
    return hashlib.sha256(text).hexdigest()[:12]


def overlay_files() -> list[tuple[str, int, bytes]]:
    """Our files, by path in the image; what sits in a bin/ folder is executable (whatever
    mode the installed package left them)."""
    found = []
    for path in sorted(p for p in OVERLAY.rglob("*") if p.is_file()):
        name = path.relative_to(OVERLAY).as_posix()
        found.append((name, 0o755 if path.parent.name == "bin" else 0o644, path.read_bytes()))
    return found


def tar_of(files: list[tuple[str, int, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, mode, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def base_hash(rootfs: str) -> str:
    digest = hashlib.sha256(f"builder {BUILDER} rootfs {rootfs}\n".encode())
    for name, mode, data in overlay_files():
        digest.update(f"{name} {mode:o} {len(data)}\n".encode() + data)
    return digest.hexdigest()[:12]


def rootfs_available(store: ImageStore, cache: Path, rootfs: str) -> bool:
    """Can the base be had without debootstrap (an imported image, or the cached tarball)?"""
    return store.find_tag(f"/base:rootfs-{rootfs}") is not None or _cached(cache, rootfs)


def _cached(cache: Path, rootfs: str) -> bool:
    tar, versions = cache / f"rootfs-{rootfs}.tar", cache / f"rootfs-{rootfs}.versions"
    return tar.is_file() and tar.stat().st_size > 0 and versions.is_file()


def ensure_base(store: ImageStore, prefix: str, cache: Path, wanted: list[str], force: bool, say: Say) -> str:
    """The base image's tag (rootfs + our files), made when missing."""
    rootfs = rootfs_hash(wanted)
    base = f"{prefix}/base:{base_hash(rootfs)}"
    rootfs_image = f"{prefix}/base:rootfs-{rootfs}"
    elsewhere = store.find_tag(f"/base:rootfs-{rootfs}")
    if force or elsewhere is None and not _cached(cache, rootfs):
        _debootstrap(store, rootfs_image, cache, rootfs, wanted, say)
    elif store.labels(rootfs_image) is not None:
        say(f"Debian base {rootfs} already imported")
    elif elsewhere is not None:
        store.tag(elsewhere, rootfs_image)  # the same content under another prefix (tests use their own)
    else:
        say(f"importing the cached Debian base {cache / f'rootfs-{rootfs}.tar'}")
        store.import_tarball(_file_chunks(cache / f"rootfs-{rootfs}.tar"), rootfs_image, _changes(cache, rootfs))
    if force or store.labels(base) is None:
        store.derive(rootfs_image, Derived(base, {"command": ["/bin/true"]}, {}, [("/", tar_of(overlay_files()))]))
    return base


def _changes(cache: Path, rootfs: str) -> list[str]:
    versions = (cache / f"rootfs-{rootfs}.versions").read_text().split()
    return [f"ENV PATH={STD_PATH}", f"LABEL {LABEL_ROOTFS}={rootfs}", f"LABEL {LABEL_VERSIONS}={','.join(versions)}"]


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def _debootstrap(store: ImageStore, ref: str, cache: Path, rootfs: str, wanted: list[str], say: Say) -> None:
    _need_debootstrap(say)
    mirror = find_mirror(SUITE)
    work = Path(tempfile.mkdtemp(prefix="mindscape-rootfs.", dir=os.environ.get("TMPDIR", "/var/tmp")))
    target, log = work / "rootfs", cache / "debootstrap.log"
    try:
        say(f"debootstrap {SUITE} ({len(wanted)} packages) from {shown(mirror)}; log: {log}")
        # debootstrap installs its own policy-rc.d (exit 101) and a fake start-stop-daemon
        # while it configures packages, so postinst scripts start no services.
        argv = ["debootstrap", *DEBOOTSTRAP_ARGS, f"--include={','.join(wanted)}", SUITE, str(target), mirror]
        with log.open("w") as out:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
        kill_processes_in(target)  # nothing started in the rootfs outlives the build
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise OperationFailed(f"debootstrap failed (full log: {log}):\n{tail}")
        shutil.copy(PREPARE, target / "prepare-rootfs.sh")
        subprocess.run(["chroot", str(target), "/bin/sh", "/prepare-rootfs.sh"], check=True)
        (target / "prepare-rootfs.sh").unlink()
        query = ["chroot", str(target), "dpkg-query", "-W", "-f", "${Package}=${Version}\\n", *wanted]
        versions = subprocess.run(query, check=True, capture_output=True, text=True).stdout
        kill_processes_in(target)
        for old in cache.glob("rootfs-*"):
            old.unlink()
        (cache / f"rootfs-{rootfs}.versions").write_text(versions)
        say(f"importing the Debian base into the engine and caching it as {cache / f'rootfs-{rootfs}.tar'}")
        _import_and_cache(store, target, ref, cache, rootfs)
    except subprocess.CalledProcessError as exc:
        command = " ".join(exc.cmd[:4])
        raise OperationFailed(f"preparing the Debian base failed: {command} exited {exc.returncode}") from None
    finally:
        kill_processes_in(target)  # also when debootstrap, the chroot or the import failed or was interrupted
        _unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)


def _import_and_cache(store: ImageStore, target: Path, ref: str, cache: Path, rootfs: str) -> None:
    """One pass over the tarball: into the engine and into the cache, written then renamed so an
    interrupted build never leaves a truncated cache behind."""
    partial = cache / f"rootfs-{rootfs}.tar.partial"
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(target), "-c", "."], stdout=subprocess.PIPE)

    def chunks() -> Iterator[bytes]:
        assert tar.stdout is not None
        with partial.open("wb") as out:
            while chunk := tar.stdout.read(1 << 20):
                out.write(chunk)
                yield chunk

    try:
        store.import_tarball(chunks(), ref, _changes(cache, rootfs))
    except BaseException:
        partial.unlink(missing_ok=True)  # hundreds of MB no later build would use
        raise
    finally:
        if tar.poll() is None:  # the engine refused midway: stop reading the rootfs
            tar.kill()
        tar.wait()
    if tar.returncode != 0:
        partial.unlink(missing_ok=True)
        # what the engine took from a tar that failed may miss files: never a base a later build finds
        store.remove([ref])
        raise OperationFailed(f"tar of the Debian base exited {tar.returncode}")
    partial.rename(cache / f"rootfs-{rootfs}.tar")


def _need_debootstrap(say: Say) -> None:
    if os.geteuid() != 0:
        raise EnvironmentUnusable(
            "the Debian base of the local images is made by debootstrap, which needs root",
            "run the build once as root: `sudo mindscape images build` (later builds reuse the cached base)",
        )
    if shutil.which("debootstrap"):
        return
    if not shutil.which("apt-get"):
        raise EnvironmentUnusable("debootstrap is not installed", "install it (`apt-get install debootstrap`)")
    say("installing debootstrap with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "debootstrap"]):
        if subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
            raise EnvironmentUnusable("installing debootstrap failed", "install it: `apt-get install debootstrap`")


def kill_processes_in(root: Path) -> list[int]:
    """Kill every process whose root is `root` (a daemon a package script left running)."""
    killed = []
    real = os.path.realpath(root)  # the kernel shows a process's root resolved (TMPDIR may be a symlink)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "root") == real:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
        except OSError:
            continue
    return killed


def _unmount_under(work: Path) -> None:
    """A failed debootstrap can leave /proc or /sys mounted inside the rootfs."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if len(line.split()) > 1]
    for mount in sorted((m for m in mounts if m.startswith(f"{work}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
