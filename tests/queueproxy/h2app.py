"""A small h2c (HTTP/2 prior knowledge) app for the queue-proxy's h2c tests, built on ``h2``.

``python -m tests.queueproxy.h2app PORT`` serves:
  /          "hello over h2" (with content-length)
  /upload    answers the size of the request body
  /stream    three chunks 0.1 s apart, no content-length, with a trailer
  /download?size=N   N bytes, respecting flow control
  /headers   the request's headers, one "name: value" a line
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.events


class H2App(asyncio.Protocol):
    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.requests: dict[int, dict] = {}
        self.waiting: dict[int, asyncio.Future[None]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        self.transport.write(self.conn.data_to_send())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.requests[event.stream_id] = {"headers": dict(event.headers), "body": 0, "list": event.headers}
                if event.stream_ended:
                    asyncio.ensure_future(self.respond(event.stream_id))
            elif isinstance(event, h2.events.DataReceived):
                self.requests[event.stream_id]["body"] += len(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                asyncio.ensure_future(self.respond(event.stream_id))
            elif isinstance(event, h2.events.WindowUpdated):
                for future in self.waiting.values():
                    if not future.done():
                        future.set_result(None)
        self.flush()

    async def respond(self, stream_id: int) -> None:
        request = self.requests.pop(stream_id)
        url = urlsplit(request["headers"][":path"])
        if url.path == "/upload":
            self.send(stream_id, str(request["body"]).encode())
        elif url.path == "/headers":
            self.send(stream_id, "".join(f"{n}: {v}\n" for n, v in request["list"]).encode())
        elif url.path == "/stream":
            self.conn.send_headers(stream_id, [(":status", "200"), ("content-type", "text/plain")])
            for index in range(3):
                self.conn.send_data(stream_id, f"part {index}\n".encode())
                self.flush()
                await asyncio.sleep(0.1)
            self.conn.send_headers(stream_id, [("x-trailer", "done")], end_stream=True)
            self.flush()
        elif url.path == "/download":
            size = int(parse_qs(url.query)["size"][0])
            self.conn.send_headers(stream_id, [(":status", "200"), ("content-length", str(size))])
            sent = 0
            while sent < size:
                window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size,
                             size - sent)
                if window <= 0:
                    future = self.waiting[stream_id] = asyncio.get_running_loop().create_future()
                    self.flush()
                    await future
                    continue
                self.conn.send_data(stream_id, b"d" * window, end_stream=sent + window >= size)
                sent += window
                self.flush()
            self.waiting.pop(stream_id, None)
        else:
            self.send(stream_id, b"hello over h2")

    def send(self, stream_id: int, body: bytes) -> None:
        self.conn.send_headers(stream_id, [(":status", "200"), ("content-length", str(len(body)))])
        self.conn.send_data(stream_id, body, end_stream=True)
        self.flush()


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(H2App, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
