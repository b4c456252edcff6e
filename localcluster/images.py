"""Container images made on this machine, without a registry: a tar in the format
``docker save`` writes (``manifest.json`` naming the config and the layers, with the image's
tag), which ``ctr images import`` loads into a containerd node.

``image_archive`` is pure: files in, archive bytes out, the same bytes for the same input
(fixed timestamps and owners), so a cached archive can be compared and rebuilt only when its
content changes. ``build_static_program`` compiles a small C program with ``gcc -static``: the
pause image is one, and so are test images that need nothing but their own binary.

Side effects: ``build_static_program`` runs gcc and writes the binary; nothing else here does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
PAUSE_SOURCE = Path(__file__).parent / "csrc" / "pause.c"
# 65535 is the user the upstream pause image runs as: no file of the host belongs to it.
NOBODY = "65535:65535"


class ImageError(RuntimeError):
    """An image could not be built; the message says what to install or check."""


@dataclasses.dataclass(frozen=True)
class ImageFile:
    path: str
    content: bytes
    mode: int = 0o755


def _layer(files: Sequence[ImageFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        directories = sorted({str(Path(f.path).parent) for f in files} - {".", "/", ""})
        for directory in directories:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            layer.addfile(info)
        for item in files:
            info = tarfile.TarInfo(item.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(item.content), item.mode, 0
            layer.addfile(info, io.BytesIO(item.content))
    return buffer.getvalue()


def image_archive(tag: str, files: Sequence[ImageFile], *, entrypoint: Sequence[str], user: str = NOBODY,
                  exposed_ports: Sequence[int] = ()) -> bytes:
    """A one-layer image holding ``files``, tagged ``tag``, in ``docker save``'s format."""
    layer = _layer(files)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(entrypoint),
            "User": user,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            **({"ExposedPorts": {f"{port}/tcp": {} for port in exposed_ports}} if exposed_ports else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created_by": "knserve localcluster.images"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_digest}/layer.tar"]}]
    entries = [
        (config_name, config_bytes),
        (f"{layer_digest}/layer.tar", layer),
        ("manifest.json", json.dumps(manifest).encode()),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def build_static_program(source: Path, output: Path) -> Path:
    """Compile ``source`` (C) into a static, stripped binary at ``output``; reuse it when it
    is newer than the source."""
    if output.exists() and output.stat().st_mtime >= source.stat().st_mtime:
        return output
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ImageError("gcc is needed to build the pause image once: install it (`apt-get install gcc "
                         "libc6-dev`) and run again.")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    result = subprocess.run([gcc, "-static", "-Os", "-s", "-o", str(tmp), str(source)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"compiling {source.name} with `gcc -static` failed (is libc6-dev installed?): "
                         f"{result.stderr.strip()}")
    tmp.rename(output)
    return output


def static_program_image(tag: str, source: Path, cache: Path, *, exposed_ports: Sequence[int] = ()) -> Path:
    """The archive of an image whose only file is ``source`` compiled static, as ``/<name>``;
    built into ``cache`` once."""
    binary = build_static_program(source, cache / source.stem)
    name = "/" + source.stem
    archive = image_archive(tag, [ImageFile(name, binary.read_bytes())], entrypoint=[name],
                            exposed_ports=exposed_ports)
    path = cache / f"{source.stem}-{hashlib.sha256(archive).hexdigest()[:12]}.tar"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(archive)
        tmp.rename(path)
    return path


def layer_image_archive(tag: str, layer: Path, output: Path, *, env: Sequence[str] = (),
                        cmd: Sequence[str] = ()) -> Path:
    """An image of one existing layer tar (a whole root filesystem), tagged ``tag``, written to
    ``output`` in ``docker save``'s format; the layer is streamed, not read into memory."""
    digest = hashlib.sha256()
    with layer.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    layer_digest = digest.hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env],
                   "Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        # One history entry per layer: builders count them against the layers.
        "history": [{"created_by": f"knserve localcluster: {layer.name}"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_digest}/layer.tar"]}]).encode()
    tmp = output.with_name(f".{output.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in ((config_name, config_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            archive.addfile(info, io.BytesIO(content))
        info = archive.gettarinfo(str(layer), arcname=f"{layer_digest}/layer.tar")
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        with layer.open("rb") as source:
            archive.addfile(info, source)
    tmp.rename(output)
    return output
