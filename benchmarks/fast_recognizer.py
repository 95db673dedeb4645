"""A do-nothing recognizer for benchmarks: raw asyncio on uvloop, HTTP/1.1 keep-alive.

    python benchmarks/fast_recognizer.py [--sleep-ms MS] [--answer TEXT]

Prints `PORT <n>` once listening on 127.0.0.1 (port chosen by the OS). It answers
`POST /recognize` with a fixed result string after an optional sleep, `GET /ping` with
200, and counts nothing, so it costs the shared CPU as little as possible. It answers
every POST alike, whatever the path: given an OIP v2 JSON answer (`--answer`), it is an
equally trivial `POST /v2/models/{model}/infer`.
"""

import argparse
import asyncio
import sys

import uvloop


class Recognizer(asyncio.Protocol):
    def __init__(self, answer: bytes, sleep_s: float) -> None:
        self.answer = answer
        self.sleep_s = sleep_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's own class

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end >= 0 else None])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            body = self.answer if head.startswith(b"post") else b"ok"
            response = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            if self.sleep_s:
                asyncio.get_running_loop().call_later(self.sleep_s, self._send, response)
            else:
                self._send(response)

    def _send(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)


async def serve(answer: bytes, sleep_s: float, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Recognizer(answer, sleep_s), "127.0.0.1", port, backlog=1024
    )
    sys.stdout.write(f"PORT {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep-ms", type=float, default=0.0)
    parser.add_argument("--answer", default="red:0.9;green:0.05;blue:0.03;cyan:0.01;gray:0.01")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(serve(args.answer.encode(), args.sleep_ms / 1000.0, args.port))


if __name__ == "__main__":
    main()
