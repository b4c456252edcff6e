"""Base images made on this machine with debootstrap, standing in for the registry images the
``Containerfile`` starts from, so knserve's image builds without a registry.

``python:3.11-slim`` is a minimal Debian bookworm with its python3 (3.11) and pip: pip may
install into it (its ``EXTERNALLY-MANAGED`` marker is removed) and ``/usr/local/lib/python3.11/
site-packages`` is where Debian's python3 looks (a link to ``dist-packages``), as in the
upstream image. ``node:20-slim`` is bookworm with Debian's nodejs and npm (Node 18: enough
for the one ``npm ci`` the build runs). Each is built once into the cache (under a minute
each here) from the Debian mirror this machine's apt uses.

Side effects: runs debootstrap and chroot (root only), writes the cache directory; network to
the Debian mirror.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from localcluster.binaries import cache_root

SUITE = "bookworm"


@dataclasses.dataclass(frozen=True)
class BaseImage:
    tag: str
    packages: tuple[str, ...]
    later: tuple[str, ...] = ()
    """Packages apt-get installs in the new root afterwards (debootstrap cannot configure npm's
    many dependencies in one go)."""

    @property
    def layer_name(self) -> str:
        return self.tag.replace(":", "-").replace("/", "-") + f"-{SUITE}.tar"


PYTHON_BASE = BaseImage("python:3.11-slim", ("python3", "python-is-python3", "python3-pip", "ca-certificates", "libexpat1"))
NODE_BASE = BaseImage("node:20-slim", ("nodejs", "ca-certificates"), later=("npm",))
# Documentation, caches and locales a slim image leaves out.
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt/archives",
           "var/lib/apt/lists")

Progress = Callable[[str], object]


class BaseImageError(RuntimeError):
    """A base image could not be made; the message says why and what to do."""


def apt_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources"),
               legacy: Path = Path("/etc/apt/sources.list")) -> str:
    """The Debian mirror this machine's apt uses (the first ``URIs:`` / ``deb`` line)."""
    for path, pattern in ((sources, r"^URIs:\s*(\S+)"), (legacy, r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)")):
        try:
            match = re.search(pattern, path.read_text(), re.M)
        except OSError:
            continue
        if match:
            return match.group(1)
    raise BaseImageError("found no Debian mirror in this machine's apt sources: debootstrap needs one")


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise BaseImageError(f"{what} failed:\n{tail}")


def make_rootfs(image: BaseImage, root: Path, *, mirror: str) -> None:
    """debootstrap a minimal bookworm with the image's packages into ``root``, trimmed."""
    if shutil.which("debootstrap") is None:
        raise BaseImageError("debootstrap is needed to make the base images: run `make node-setup`.")
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(image.packages)}", SUITE, str(root), mirror],
         "debootstrap")
    if image.later:
        resolver = root / "etc" / "resolv.conf"
        shutil.copyfile("/etc/resolv.conf", resolver)
        try:
            _run(["chroot", str(root), "apt-get", "update"], "apt-get update in the new root")
            _run(["chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                  "--no-install-recommends", *image.later], f"installing {' '.join(image.later)} in the new root")
            _run(["chroot", str(root), "apt-get", "clean"], "apt-get clean in the new root")
        finally:
            resolver.unlink(missing_ok=True)
    for marker in (root / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    site = root / "usr" / "local" / "lib" / "python3.11"
    site.mkdir(parents=True, exist_ok=True)
    if not (site / "site-packages").exists():
        (site / "site-packages").symlink_to("dist-packages")
        (site / "dist-packages").mkdir(exist_ok=True)
    for relative in TRIMMED:
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir(parents=True)


def rootfs_archive(root: Path, archive: Path) -> None:
    """``root`` as one uncompressed layer tar (owners, modes and links kept)."""
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as layer:
        for entry in sorted(root.iterdir()):
            if entry.name in ("proc", "sys", "dev"):
                info = tarfile.TarInfo(entry.name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                layer.addfile(info)
                continue
            layer.add(str(entry), arcname=entry.name)


def base_layer(image: BaseImage, *, progress: Progress = print) -> Path:
    """The cached layer of ``image``, made once."""
    cache = cache_root() / "images"
    layer = cache / image.layer_name
    if layer.exists():
        return layer
    if os.geteuid() != 0:
        raise BaseImageError(f"making the base image {image.tag} needs root (debootstrap)")
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f".rootfs-{hashlib.sha256(f'{image.tag}{os.getpid()}'.encode()).hexdigest()[:8]}"
    progress(f"making the base image {image.tag} with debootstrap (first time only; about a minute)")
    try:
        make_rootfs(image, root, mirror=apt_mirror())
        tmp = layer.with_name(f".{layer.name}.tmp")
        rootfs_archive(root, tmp)
        tmp.rename(layer)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return layer
