"""A do-nothing dial-out recognizer for benchmarks (SPEC §10): aiohttp WebSocket client.

    python benchmarks/fast_dialout.py --hub URL --service GUID --key KEY [--sleep-ms MS]

Connects to `{hub}/api/v1/connect`, says hello (4 in flight), prints `CONNECTED` once
welcomed, and answers every request frame with a fixed result string after an optional
sleep; it verifies nothing, so it costs the shared CPU about what fast_recognizer.py does.
"""

import argparse
import asyncio
import json
import struct
import sys

import aiohttp
import uvloop

ANSWER = "red:0.9;green:0.05;blue:0.03;cyan:0.01;gray:0.01"


async def serve(hub: str, service: str, key: str, sleep_s: float, concurrency: int) -> None:
    url = hub.replace("http", "ws", 1).rstrip("/") + "/api/v1/connect"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"Authorization": f"Bearer {key}"}) as ws,
    ):
        hello = {
            "type": "hello",
            "protocol": "recoghub-ws/1",
            "service_guid": service,
            "instance": "bench",
            "max_concurrency": concurrency,
        }
        await ws.send_str(json.dumps(hello))
        welcome = await ws.receive()
        if welcome.type != aiohttp.WSMsgType.TEXT:
            sys.exit(f"refused: {ws.close_code} {welcome.extra}")
        sys.stdout.write("CONNECTED\n")
        sys.stdout.flush()

        async def answer(request_id: str) -> None:
            if sleep_s:
                await asyncio.sleep(sleep_s)
            result = {"type": "result", "request_id": request_id, "status": 200, "body": ANSWER}
            await ws.send_str(json.dumps(result))

        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                data = message.data
                (length,) = struct.unpack_from(">I", data)
                request_id = json.loads(data[4 : 4 + length])["request_id"]
            elif message.type == aiohttp.WSMsgType.TEXT:
                request_id = json.loads(message.data).get("request_id")
                if request_id is None:
                    continue
            else:
                break
            if sleep_s:
                asyncio.ensure_future(answer(request_id))
            else:
                await answer(request_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--sleep-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    uvloop.run(serve(args.hub, args.service, args.key, args.sleep_ms / 1000, args.concurrency))


if __name__ == "__main__":
    main()
