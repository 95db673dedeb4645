"""Issue 17, attack 1, re-run: compressed frames to the dial-out route; the hub's RSS growth.

    .venv/bin/python benchmarks/attack_inflate.py [--connections 48] [--frames 600]
                                                  [--as anonymous|team]

A hub (`recoghub serve --no-worker` in a subprocess, SQLite in a temp dir). Each of
`--connections` clients asks to upgrade `/api/v1/connect` offering permessage-deflate;
once upgraded, it writes in one TCP write a hello and `--frames` text frames compressed
with permessage-deflate (RSV1 set), each 466 bytes on the wire that would inflate to
389 KB. `anonymous` sends no key; `team` sends a provider's valid key. The
hub's RSS is sampled every 50 ms: before, peak, and 3 s after the clients closed.
Target (issue 17): growth under 100 MB for 48 anonymous connections.
"""

import argparse
import asyncio
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import psutil
from hub_setup import hub_settings, worker_env
from processes import free_port, recoghub_command, stop_processes, tail

# Just under the hub's 397,312-byte message cap (frames.MAX_MESSAGE_BYTES): a frame over
# it is refused (1009) before it is inflated whole.
INFLATED_BYTES = 389_000


def frame(payload: bytes, *, opcode: int = 0x1, compressed: bool = False) -> bytes:
    """One masked client frame (FIN set; RSV1 when `compressed`)."""
    first = 0x80 | (0x40 if compressed else 0) | opcode
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def deflated(size: int) -> bytes:
    """`size` bytes of JSON-ish text, deflated as permessage-deflate sends it."""
    head = b'{"type": "result", "request_id": "x", "status": 200, "body": "'
    text = head + b"a" * (size - len(head) - 2) + b'"}'
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]  # permessage-deflate drops the 00 00 ff ff tail


def attack_bytes(port: int, key: str | None, frames: int) -> tuple[bytes, bytes]:
    """The upgrade request, then the hello and the compressed frames (one write each)."""
    headers = [
        "GET /api/v1/connect HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    hello = json.dumps(
        {
            "type": "hello",
            "protocol": "recoghub-ws/1",
            "service_guid": "00000000-0000-4000-8000-000000000000",
            "instance": "x",
            "max_concurrency": 1,
        }
    ).encode()
    bomb = frame(deflated(INFLATED_BYTES), compressed=True)
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()
    return request, frame(hello) + bomb * frames


async def one_client(port: int, payload: tuple[bytes, bytes], hold_s: float) -> str:
    """The hub's status line; after a 101, the hello and the frames go in one write."""
    request, frames = payload
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " in status:
            extension = b"permessage-deflate" in head.lower()
            status += " (deflate negotiated)" if extension else " (no extension)"
            try:
                writer.write(frames)
                await writer.drain()
                async with asyncio.timeout(hold_s):
                    while await reader.read(65536):
                        pass
            except (OSError, TimeoutError):
                pass  # the hub closed it, or held it: either way it has the bytes
        return status
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        return f"({type(exc).__name__})"
    finally:
        writer.close()


async def attack(
    port: int, payload: tuple[bytes, bytes], connections: int, pid: int
) -> tuple[int, list[str]]:
    process = psutil.Process(pid)
    peak = process.memory_info().rss
    clients = asyncio.gather(*(one_client(port, payload, 5.0) for _ in range(connections)))
    while not clients.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.05)
    return peak, list(await clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=48)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--as", dest="who", choices=("anonymous", "team"), default="anonymous")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="recoghub-attack-inflate-"))
    settings = hub_settings(f"sqlite:///{workdir / 'hub.db'}", workdir)
    port = free_port()
    log_path = workdir / "hub.log"
    hub: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("wb") as log:
            hub = subprocess.Popen(
                [*recoghub_command(), "serve", "--no-worker", "--port", str(port)],
                env=worker_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        key = wait_and_register(f"http://127.0.0.1:{port}", settings.admin_token or "", hub)
        payload = attack_bytes(port, key if args.who == "team" else None, args.frames)
        process = psutil.Process(hub.pid)
        time.sleep(1.0)
        before = process.memory_info().rss
        peak, answers = asyncio.run(attack(port, payload, args.connections, hub.pid))
        time.sleep(3.0)
        after = process.memory_info().rss
        mb = 1024 * 1024
        print(
            f"{args.connections} {args.who} connections, {args.frames} compressed frames each"
            f" ({len(payload[1])} bytes in one write after the upgrade,"
            f" {INFLATED_BYTES} bytes a frame inflated)"
        )
        print(f"hub answers: { {a: answers.count(a) for a in sorted(set(answers))} }")
        print(
            f"hub RSS: before {before / mb:.0f} MB, peak {peak / mb:.0f} MB,"
            f" 3 s after {after / mb:.0f} MB: growth {(peak - before) / mb:.0f} MB at peak,"
            f" {(after - before) / mb:.0f} MB after (target < 100 MB)"
        )
        alive = hub.poll() is None
        print(f"hub still serving: {alive}")
        if not alive:
            print(tail(log_path))
    finally:
        if hub is not None:
            stop_processes([hub])
        shutil.rmtree(workdir, ignore_errors=True)


def wait_and_register(hub_url: str, token: str, hub: subprocess.Popen[bytes]) -> str:
    """Wait for the hub; a provider and a service; the provider's key."""
    with httpx.Client(
        base_url=hub_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        deadline = time.monotonic() + 60
        while True:
            if hub.poll() is not None:
                raise RuntimeError(f"the hub exited with {hub.returncode}")
            try:
                if client.get("/api/v1/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the hub did not come up")
            time.sleep(0.1)
        provider = client.post("/api/v1/providers", json={"name": "attacker"})
        provider.raise_for_status()
        client.post(
            "/api/v1/services",
            json={"provider_guid": provider.json()["guid"], "name": "bombs", "endpoints": []},
        ).raise_for_status()
        key: str = provider.json()["api_key"]
        return key


if __name__ == "__main__":
    main()
