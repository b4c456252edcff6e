"""The function runtime (``knserve function``): serve a handler directory on ``$PORT``.

Settings come from the environment ``knserve func deploy`` writes into the Service:

    FUNCTION_DIR          the handler's files (a ConfigMap volume; default /var/knserve/function)
    FUNCTION_HANDLER      module:attribute (default: detected, see functions.loader)
    FUNCTION_STYLE        lambda | openfaas | openfaas-http | plain | wsgi | asgi (default: detected)
    FUNCTION_TIMEOUT      the revision's timeoutSeconds (Lambda's remaining time)
    FUNCTION_DEPS_CACHE   where requirements.txt is installed once per distinct file
    K_SERVICE             the function's name

The handler is imported once per process, before the port opens: a handler that fails to
import (or whose requirements fail to install) ends the process with exit code 1 after a
short message on stderr, which the Revision's condition shows. Every request then calls it in
its style on the samples' threaded HTTP/1.1 server (``functions.httpserver``).

Side effects: may run pip, imports user code, serves HTTP until SIGTERM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from functions.httpserver import SampleHandler, listen_port, log, serve
from functions.loader import Function, LoadError, load_function
from functions.styles import HttpRequest, HttpResponse

NAME = "function"
DEFAULT_DIR = "/var/knserve/function"
MAX_BODY = 64 << 20


class FunctionHandler(SampleHandler):
    server_version = "knserve-function"
    function: Function | None = None

    def read_request_body(self) -> bytes | None:
        """The body (Content-Length or chunked); None after answering 413 when it is too large."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(4096)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY:
                    self.send_error(413)
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline(4096)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return None
        return self.rfile.read(length) if length > 0 else b""

    def serve_function(self) -> None:
        body = self.read_request_body()
        if body is None:
            return
        assert self.function is not None
        request = HttpRequest.from_target(self.command, self.path, headers=tuple(self.headers.items()), body=body,
                                          client=self.client_address[0] if self.client_address else "")
        self.send(self.function.call(request))

    def send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for key, value in response.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = serve_function


def prepare(environ: Mapping[str, str]) -> Function:
    """Install the requirements (once per distinct file) and load the handler; raises LoadError."""
    directory = Path(environ.get("FUNCTION_DIR") or DEFAULT_DIR).resolve()
    if not directory.is_dir():
        raise LoadError(f"The function's directory {directory} does not exist.")
    requirements = directory / "requirements.txt"
    cache = environ.get("FUNCTION_DEPS_CACHE")
    from functions import deps

    if deps.has_requirements(requirements):
        if not cache:
            raise LoadError("The function has a requirements.txt but FUNCTION_DEPS_CACHE names no directory for it.")
        try:
            installed = deps.ensure_installed(requirements, Path(cache), log=lambda line: log(NAME, line))
        except deps.InstallError as error:
            raise LoadError(str(error)) from error
        sys.path.insert(0, str(installed))
    timeout = float(environ.get("FUNCTION_TIMEOUT") or 300)
    return load_function(directory, target=environ.get("FUNCTION_HANDLER", ""),
                         style=environ.get("FUNCTION_STYLE") or "auto", name=environ.get("K_SERVICE") or NAME,
                         timeout_seconds=timeout, server_port=listen_port(environ))


def main(argv: list[str] | None = None) -> int:
    try:
        function = prepare(os.environ)
    except LoadError as error:
        log(NAME, f"cannot load the function: {error}")
        return 1
    log(NAME, f"loaded {function.name} ({function.style} style)")
    FunctionHandler.function = function
    return serve(FunctionHandler, name=NAME)


if __name__ == "__main__":
    sys.exit(main())
