"""Locust's FastHttpUser as a peer of the bare loops (`baselines.py`), in a process of its own.

    .venv/bin/python benchmarks/locust_peer.py < job.json

`job.json`: {"urls": [...], "files": [...], "per_target": 4}. One FastHttpUser per
recognizer and lane (`per_target` lanes a recognizer, the hub's per-service
concurrency), each sending its share of the images once, read from their files as the
other loops do, through Locust's own runner and statistics. Prints one JSON line:
requests, seconds from the users' start to the last one done, failures, and this
process's CPU seconds over that time (user + system).

A subprocess because importing Locust monkey-patches the standard library for gevent,
which the benchmark's asyncio loops cannot share. Needs the `bench` extra
(`pip install -e .[bench]`).
"""

import json
import resource
import sys
import time
from itertools import count
from pathlib import Path

import gevent
from gevent.event import Event
from locust import FastHttpUser, task
from locust.env import Environment
from locust.exception import StopUser


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    job = json.load(sys.stdin)
    urls: list[str] = job["urls"]
    files = [Path(name) for name in job["files"]]
    per_target: int = job["per_target"]
    lanes = [(url, lane) for url in urls for lane in range(per_target)]
    numbers = count()
    finished: list[float] = []
    all_done = Event()

    class Lane(FastHttpUser):
        host = urls[0]
        # Locust's default keeps connections and reuses them, like the other loops.

        def on_start(self) -> None:
            url, lane = lanes[next(numbers)]
            self.target = url + "/recognize"
            self.share = files[lane::per_target]

        @task
        def send_all(self) -> None:
            for path in self.share:
                with self.client.post(
                    self.target,
                    data=path.read_bytes(),
                    headers={"Content-Type": "image/png"},
                    catch_response=True,
                ) as response:
                    _ = response.content
            finished.append(time.perf_counter())
            if len(finished) == len(lanes):
                all_done.set()
            raise StopUser

    environment = Environment(user_classes=[Lane])
    runner = environment.create_local_runner()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    runner.start(len(lanes), spawn_rate=len(lanes) * 1000)
    all_done.wait(timeout=600)
    seconds = max(finished) - started if finished else float("nan")
    cpu = cpu_seconds() - cpu_before
    stats = environment.stats.total
    runner.quit()
    gevent.sleep(0)
    print(
        json.dumps(
            {
                "requests": stats.num_requests,
                "failures": stats.num_failures,
                "seconds": seconds,
                "cpu_s": cpu,
                "lanes_done": len(finished),
            }
        )
    )


if __name__ == "__main__":
    main()
