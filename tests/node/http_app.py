"""A tiny HTTP app for node-agent tests: answers on $PORT, reports its pod, exits on SIGTERM.

GET / answers ``hello from <pod name>``; GET /healthz answers 200, or 503 when the variable
``UNHEALTHY`` is set. It logs a line when it starts listening and when SIGTERM arrives (and then appends its pod
name to the file ``SIGTERM_FILE`` names, if set).
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            status = 503 if os.environ.get("UNHEALTHY") else 200
            body = b"unhealthy\n" if status == 503 else b"ok\n"
        else:
            status, body = 200, f"hello from {os.environ.get('HOSTNAME', '?')}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"request {self.command} {self.path}", flush=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)

    def on_term(signum: int, frame: object) -> None:
        print("got SIGTERM, shutting down", flush=True)
        marker = os.environ.get("SIGTERM_FILE")
        if marker:
            with open(marker, "a") as note:
                note.write(f"{os.environ.get('HOSTNAME', '?')}\n")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_term)
    print(f"listening on {os.environ.get('KNSERVE_POD_IP', '0.0.0.0')}:{port}", flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
