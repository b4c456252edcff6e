"""``python -m localcluster.registry --listen ADDRESS:PORT --layout DIR``: a read-only image
registry for containerd nodes, serving the images of an OCI image layout.

The nodes' containerd sends every pull for the registries the examples name (``ghcr.io``,
``gcr.io``, ...) here (``hosts.toml`` mirror settings), so YAML with ``:latest`` tags and the
default pull policy runs unchanged, and no pull ever leaves the machine. containerd names the
registry it wanted in the ``ns`` query parameter; an image is found by
``<ns>/<repository>:<tag>``, the name the layout's index gives it
(``org.opencontainers.image.ref.name``), or by digest.

``Layout`` is the pure part (files in, answers out); the HTTP server is a thin shell of the
standard library (it must run before and beside anything else, like the control plane).

Side effects: listens on ADDRESS:PORT (a node's link address on the host), reads DIR.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REF_NAME = "org.opencontainers.image.ref.name"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/]+)$")


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    content_type: str = "application/json"
    body: bytes = b""
    digest: str | None = None
    file: Path | None = None
    size: int = 0


class Layout:
    """An OCI image layout directory (``index.json`` and ``blobs/sha256/``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _index(self) -> list[dict[str, Any]]:
        try:
            manifests = json.loads((self.directory / "index.json").read_text()).get("manifests", [])
        except (OSError, ValueError):
            return []
        return [m for m in manifests if isinstance(m, dict)]

    def _blob(self, digest: str) -> Path | None:
        if not DIGEST.match(digest):
            return None
        path = self.directory / "blobs" / "sha256" / digest.removeprefix("sha256:")
        return path if path.is_file() else None

    def names(self) -> list[str]:
        return sorted(str((m.get("annotations") or {}).get(REF_NAME, "")) for m in self._index())

    def answer(self, path: str, query: str) -> Answer:
        """The answer to a GET (or HEAD) of ``path?query``."""
        if path in ("/v2", "/v2/"):
            return Answer(200, body=b"{}")
        match = PATH.match(path)
        if match is None:
            return Answer(404, body=b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        name, kind, reference = match["name"], match["kind"], match["reference"]
        namespace = urllib.parse.parse_qs(query).get("ns", ["docker.io"])[0]
        if kind == "blobs":
            blob = self._blob(reference)
            if blob is None:
                return Answer(404, body=b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            return Answer(200, "application/octet-stream", digest=reference, file=blob, size=blob.stat().st_size)
        for descriptor in self._index():
            annotations = descriptor.get("annotations") or {}
            wanted = (reference == descriptor.get("digest")
                      or annotations.get(REF_NAME) in (f"{namespace}/{name}:{reference}", f"{name}:{reference}"))
            if wanted:
                digest = str(descriptor["digest"])
                blob = self._blob(digest)
                if blob is not None:
                    return Answer(200, str(descriptor.get("mediaType", "application/vnd.oci.image.manifest.v1+json")),
                                  body=blob.read_bytes(), digest=digest)
        if DIGEST.match(reference) and (blob := self._blob(reference)) is not None:
            body = blob.read_bytes()
            media_type = json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
            return Answer(200, str(media_type), body=body, digest=reference)
        return Answer(404, body=b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')


def _handler(layout: Layout) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, *, body: bool) -> None:
            parts = urllib.parse.urlsplit(self.path)
            answer = layout.answer(parts.path, parts.query)
            size = answer.size if answer.file is not None else len(answer.body)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(size))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            if answer.digest:
                self.send_header("Docker-Content-Digest", answer.digest)
            self.end_headers()
            if not body:
                return
            if answer.file is not None:
                with answer.file.open("rb") as source:
                    while chunk := source.read(1 << 20):
                        self.wfile.write(chunk)
            else:
                self.wfile.write(answer.body)

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            self._serve(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(body=False)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.registry")
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--layout", required=True, help="an OCI image layout directory")
    args = parser.parse_args(argv)
    address, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((address, int(port)), _handler(Layout(Path(args.layout))))
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
