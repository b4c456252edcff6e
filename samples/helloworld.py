"""The hello world sample: the local stand-in for ``ghcr.io/knative/helloworld-go``.

``python3 -m samples.helloworld`` answers every request with ``Hello $TARGET!`` (TARGET
defaults to ``World``) on ``$PORT`` (default 8080), like Knative's getting-started app.
Side effects: serves HTTP until SIGTERM; logs to stderr.
"""

from __future__ import annotations

import os

from samples.httpserver import SampleHandler, serve


def greeting(target: str | None) -> str:
    return f"Hello {target or 'World'}!\n"


class HelloHandler(SampleHandler):
    def do_GET(self) -> None:
        self.read_body()
        self.send_text(greeting(os.environ.get("TARGET")))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET


def main() -> int:
    return serve(HelloHandler, name="helloworld")


if __name__ == "__main__":
    raise SystemExit(main())
