"""SPEC §8 "Dispatch": a RecogHub dry run against 8 fast recognizers vs bare loops.

    .venv/bin/python benchmarks/bench_dispatch.py [--images 5000] [--rounds 1]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--workers K]
        [--sleep-ms 0] [--hub-clients aiohttp,pyreqwest,wreq] [--no-locust]

In one run, against the same 8 recognizer processes and the same stored image files:
(a) bare aiohttp, pyreqwest and wreq loops under uvloop, 4 requests in flight per
recognizer, and Locust's FastHttpUser (one process, 4 users per recognizer; the `bench`
extra, `locust_peer.py`);
(b) a RecogHub dry run for each of --hub-clients (the worker's RECOGHUB_HTTP_CLIENT)
driven by the embedded default as `recoghub serve` starts it (or, with --workers K, by
K `recoghub worker` processes beside a `recoghub serve --no-worker`) on the same images,
each service at its default concurrency (4), every result recorded, while the API is
asked the run's leaderboard and the run, one request at a time about every 20 ms (their
p50 and p99 are printed: SPEC §8 wants at most 50 and 150 ms); (c) a bare httpx loop (on the first
--httpx-images images: httpx is slow). The hub's images/s are read from the database:
work items / (run started, i.e. first claim .. last result) and .. run completed (every
result committed and scored). Target: hub / aiohttp >= 1.0 (SPEC §8).

With --oip, the same rounds also run (d) a dry run against 8 equally trivial OIP v2
servers (the same fast recognizer answering a Triton classification JSON) registered as
`oip-v2` services, and the adapters' own cost per request (build the request, read the
answer) is timed in-process for recoghub-v1 and oip-v2 (SPEC §11).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import uvloop
from baselines import aiohttp_loop, httpx_loop, pyreqwest_loop, wreq_loop
from hub_serve import ApiPoller, profiled_children, serve_process, tree_cpu_seconds
from hub_setup import BenchHub, bench_hub, worker_processes
from processes import load_average, tail

RECOGNIZERS = 8
PER_TARGET = 4
# The fast recognizer's five tags as Triton's classification extension answers them.
OIP_OPTIONS = {"model": "bench", "output": "top"}
OIP_ANSWER = json.dumps(
    {
        "model_name": "bench",
        "model_version": "1",
        "outputs": [
            {
                "name": "top",
                "datatype": "BYTES",
                "shape": [1, 5],
                "data": ["0.9:0:red", "0.05:1:green", "0.03:2:blue", "0.01:3:cyan", "0.01:4:gray"],
            }
        ],
    }
)
V1_ANSWER = "red:0.9;green:0.05;blue:0.03;cyan:0.01;gray:0.01"


def _ratios(rates: list[float], peers: list[float]) -> str:
    """Each round's ratio (measured side by side), and their median: the machine's speed
    drifts between a round's two measurements, in both directions."""
    ratios = [r / p for r, p in zip(rates, peers, strict=True)]
    return (
        ", ".join(f"{x:.2f}" for x in ratios)
        + f" per round, median {statistics.median(ratios):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000, help="images in the dataset")
    parser.add_argument("--side", type=int, default=16, help="PNG side in pixels")
    parser.add_argument("--rounds", type=int, default=1, help="aiohttp + hub pairs to run")
    parser.add_argument("--httpx-images", type=int, default=1000, help="images for httpx")
    parser.add_argument("--postgres", metavar="URL", help="run the hub on this PostgreSQL server")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="experiment: gc.freeze() in the workers"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="send with this many `recoghub worker` processes (default: `recoghub serve`'s own)",
    )
    parser.add_argument("--sleep-ms", type=float, default=0.0, help="recognizers' think time")
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        help="experiment: run the workers with sys.setswitchinterval(this / 1000)",
    )
    parser.add_argument(
        "--profile-dir", type=Path, help="sample the workers with py-spy, stacks written here"
    )
    parser.add_argument(
        "--timing-bound-ms",
        type=float,
        help="RECOGHUB_TIMING_BOUND_MS of the workers (0: the in-flight limit off)",
    )
    parser.add_argument(
        "--oip", action="store_true", help="also run oip-v2 services (SPEC §11) in each round"
    )
    parser.add_argument(
        "--hub-clients",
        type=lambda text: text.split(","),
        default=["aiohttp", "pyreqwest", "wreq"],
        help="RECOGHUB_HTTP_CLIENT of the hub's dry runs, comma-separated; one run each a round",
    )
    parser.add_argument(
        "--no-locust", action="store_true", help="skip the Locust FastHttpUser peer"
    )
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=20.0,
        help="ask the API the leaderboard and the run about this often during the hub's runs"
        " (0: not at all)",
    )
    args = parser.parse_args()
    if (args.workers or 1) > 1 and not args.postgres:
        parser.error("SQLite allows one worker; give --postgres URL for --workers > 1")

    from recognizers import fast_recognizers

    with (
        bench_hub(
            "dispatch", recognizers=RECOGNIZERS, sleep_ms=args.sleep_ms, postgres_url=args.postgres
        ) as (hub, urls, workdir),
        ExitStack() as stack,
    ):
        oip_urls = (
            stack.enter_context(
                fast_recognizers(RECOGNIZERS, sleep_ms=args.sleep_ms, answer=OIP_ANSWER)
            )
            if args.oip
            else []
        )
        bench(hub, urls, args, workdir, oip_urls)


def sender(args: argparse.Namespace) -> str:
    if args.workers is None:
        return "sent by recoghub serve"
    return f"sent by {args.workers} recoghub worker process(es)"


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_loop(
    loop: Callable[[Sequence[str], Sequence[Path], int], Awaitable[float]],
    urls: Sequence[str],
    files: Sequence[Path],
) -> tuple[float, str]:
    """One bare client loop under uvloop: images/s, and a line with the process CPU per
    request (every thread of this process: pyreqwest's HTTP runs on its own)."""
    cpu_before = own_cpu_seconds()
    rate = uvloop.run(loop(urls, files, PER_TARGET))
    requests = len(urls) * len(files)
    cpu_us = (own_cpu_seconds() - cpu_before) / requests * 1e6
    return rate, f"{rate:8.0f} images/s ({requests} requests; {cpu_us:.0f} µs CPU each)"


def locust_peer(urls: Sequence[str], files: Sequence[Path]) -> tuple[float, str]:
    """Locust's FastHttpUser in a process of its own (`locust_peer.py`): images/s, and a
    line with that process's CPU per request."""
    job = {"urls": list(urls), "files": [str(path) for path in files], "per_target": PER_TARGET}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("locust_peer.py"))],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"locust_peer.py failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    requests = len(urls) * len(files)
    if result["requests"] != requests or result["failures"]:
        raise RuntimeError(f"locust_peer.py sent {result}, expected {requests} requests")
    rate = requests / result["seconds"]
    cpu_us = result["cpu_s"] / requests * 1e6
    return rate, f"{rate:8.0f} images/s ({requests} requests; {cpu_us:.0f} µs CPU each)"


def hub_round(
    hub: BenchHub,
    args: argparse.Namespace,
    workdir: Path,
    dataset_id: int,
    guids: list[str],
    items: int,
    http_client: str,
) -> tuple[float, float, str]:
    """One dry run sending with `http_client`, by `recoghub serve` (or --workers K
    `recoghub worker` processes), the API polled meanwhile: images/s to completed,
    worker CPU µs per item, and lines describing it."""
    switch_s = args.switch_interval_ms / 1000 if args.switch_interval_ms else None
    env = {"RECOGHUB_HTTP_CLIENT": http_client}
    if args.timing_bound_ms is not None:
        env["RECOGHUB_TIMING_BOUND_MS"] = str(args.timing_bound_ms)
    serving = args.workers is None
    with ExitStack() as stack:
        serve, url = stack.enter_context(
            serve_process(hub, log_path=workdir / "serve.log", worker=serving, extra_env=env)
        )
        procs = [serve]
        if serving and args.profile_dir is not None:
            stack.enter_context(profiled_children(serve, args.profile_dir))
        if not serving:
            procs = stack.enter_context(
                worker_processes(
                    hub,
                    args.workers,
                    log_dir=workdir,
                    profile_dir=args.profile_dir,
                    switch_interval_s=switch_s,
                    gc_freeze=args.gc_freeze,
                    extra_env=env,
                )
            )
        cpu_before = tree_cpu_seconds(procs)
        api_before = tree_cpu_seconds([serve])["api"] if not serving else 0.0
        run_id = hub.start_run(dataset_id, guids)
        assert hub.settings.admin_token is not None
        with ApiPoller(
            url, hub.settings.admin_token, run_id, every_s=args.poll_ms / 1000
        ) as poller:
            try:
                hub.wait_run(run_id, workers=procs, timeout_s=max(120.0, items / 100))
            except RuntimeError:
                print(tail(workdir / ("serve.log" if serving else "worker-0.log")))
                raise
        cpu_after = tree_cpu_seconds(procs)
        worker_us = (cpu_after["sender"] - cpu_before["sender"]) / items * 1e6
        recorder_us = (cpu_after["recorder"] - cpu_before["recorder"]) / items * 1e6
        api_s = cpu_after["api"] - cpu_before["api"]
        if not serving:
            api_s = tree_cpu_seconds([serve])["api"] - api_before
    timing = hub.timing(run_id)
    sender = "recoghub serve" if serving else f"{args.workers} recoghub worker(s)"
    line = (
        f"run {run_id} by {sender}: {timing.to_completed:8.0f} images/s"
        f" to completed, {timing.to_last_result:.0f} to last result"
        f" ({timing.items} work items in {timing.seconds:.2f}s; sender CPU {worker_us:.0f} µs"
        f" each, recorder {recorder_us:.0f} µs each, API process {api_s / items * 1e6:.0f} µs each)"
        f"\n  check: {hub.check_exactly_once(run_id, expected=items)}"
        f"\n  API during the run: {poller.summary()}"
    )
    return timing.to_completed, worker_us, line


def adapter_cost_us(protocol: str, image: bytes, answer: bytes, n: int = 20_000) -> float:
    """In-process CPU µs per request of one adapter: build the request, read the answer.

    CPU time, not wall time: on the shared machine the latter counts other processes."""
    from gateway.dispatch.protocols import adapter_for

    adapter = adapter_for(protocol, OIP_OPTIONS if protocol == "oip-v2" else None)
    base = "http://127.0.0.1:9"
    started = time.process_time()
    for _ in range(n):
        adapter.build_request(base, image, "image/png")
        adapter.parse_answer(answer)
    return (time.process_time() - started) / n * 1e6


def bench(
    hub: BenchHub,
    urls: list[str],
    args: argparse.Namespace,
    workdir: Path,
    oip_urls: list[str],
) -> None:
    database = "PostgreSQL" if args.postgres else "SQLite"
    hub.migrate()
    started = time.perf_counter()
    dataset_id = hub.import_images("dispatch", args.images, side=args.side)
    files = hub.image_files(dataset_id)
    guids = hub.register(urls)
    items = len(files) * len(urls)
    print(
        f"setup: {len(files)} {args.side}x{args.side} PNGs imported, {len(urls)} recognizers"
        f" (sleep {args.sleep_ms:g} ms), {database}, {sender(args)};"
        f" {time.perf_counter() - started:.1f}s"
    )
    print(f"  {load_average()}")

    aiohttp_rates: list[float] = []
    pyreqwest_rates: list[float] = []
    wreq_rates: list[float] = []
    locust_rates: list[float] = []
    hub_rates: dict[str, list[float]] = {client: [] for client in args.hub_clients}
    oip_rates: list[float] = []
    oip_guids = hub.register(oip_urls, protocol="oip-v2", options=OIP_OPTIONS) if oip_urls else []
    for round_no in range(1, args.rounds + 1):
        rate, line = bare_loop(aiohttp_loop, urls, files)
        aiohttp_rates.append(rate)
        print(f"round {round_no} (a) aiohttp+uvloop: {line}")
        rate, line = bare_loop(pyreqwest_loop, urls, files)
        pyreqwest_rates.append(rate)
        print(f"round {round_no} (a) pyreqwest+uvloop: {line}")
        rate, line = bare_loop(wreq_loop, urls, files)
        wreq_rates.append(rate)
        print(f"round {round_no} (a) wreq+uvloop: {line}")
        if not args.no_locust:
            rate, line = locust_peer(urls, files)
            locust_rates.append(rate)
            print(f"round {round_no} (a) Locust FastHttpUser: {line}")
        print(f"  {load_average()}")

        for client, rates in hub_rates.items():
            rate, _, line = hub_round(hub, args, workdir, dataset_id, guids, items, client)
            rates.append(rate)
            print(f"round {round_no} (b) RecogHub on {client} {line}")
            print(f"  {load_average()}")
        if oip_guids:
            first = args.hub_clients[0]
            rate, _, line = hub_round(hub, args, workdir, dataset_id, oip_guids, items, first)
            oip_rates.append(rate)
            print(f"round {round_no} (d) RecogHub oip-v2 {line}")
            print(f"  {load_average()}")

    httpx_rate, line = bare_loop(httpx_loop, urls, files[: args.httpx_images])
    print(f"(c) httpx+uvloop: {line}")

    best_aiohttp = max(aiohttp_rates)
    print()
    print(f"aiohttp+uvloop  {best_aiohttp:8.0f} images/s (best of {len(aiohttp_rates)})")
    print(f"pyreqwest       {max(pyreqwest_rates):8.0f} images/s (best of {len(pyreqwest_rates)})")
    print(f"wreq            {max(wreq_rates):8.0f} images/s (best of {len(wreq_rates)})")
    if locust_rates:
        print(f"Locust          {max(locust_rates):8.0f} images/s (best of {len(locust_rates)})")
    print(f"httpx           {httpx_rate:8.0f} images/s")
    for client, rates in hub_rates.items():
        print(
            f"RecogHub on {client:9} {max(rates):8.0f} images/s (best of {len(rates)};"
            f" {database}, {sender(args)})"
        )
    print(
        "pyreqwest / aiohttp "
        + ", ".join(f"{p / a:.2f}" for p, a in zip(pyreqwest_rates, aiohttp_rates, strict=True))
        + f" per round; httpx / aiohttp {httpx_rate / best_aiohttp:.2f}"
    )
    print(
        "wreq / aiohttp "
        + ", ".join(f"{w / a:.2f}" for w, a in zip(wreq_rates, aiohttp_rates, strict=True))
        + " per round"
    )
    if locust_rates:
        print(
            "Locust / aiohttp "
            + ", ".join(f"{w / a:.2f}" for w, a in zip(locust_rates, aiohttp_rates, strict=True))
            + " per round"
        )
    for client, rates in hub_rates.items():
        print(f"hub on {client} / aiohttp {_ratios(rates, aiohttp_rates)} (target >= 1.0)")
        if locust_rates:
            print(f"hub on {client} / Locust {_ratios(rates, locust_rates)} (target >= 1.2)")
    if oip_rates:
        print(
            f"RecogHub oip-v2 {max(oip_rates):8.0f} images/s (best of {len(oip_rates)});"
            " oip-v2 / recoghub-v1 "
            + ", ".join(
                f"{o / h:.2f}"
                for o, h in zip(oip_rates, hub_rates[args.hub_clients[0]], strict=True)
            )
            + " per round"
        )
        image = files[0].read_bytes()
        v1_us = adapter_cost_us("recoghub-v1", image, V1_ANSWER.encode())
        oip_us = adapter_cost_us("oip-v2", image, OIP_ANSWER.encode())
        print(
            f"adapter cost per request ({len(image)}-byte PNG, 5 tags): recoghub-v1"
            f" {v1_us:.1f} µs, oip-v2 {oip_us:.1f} µs (+{oip_us - v1_us:.1f} µs)"
        )
    print(f"  {load_average()}")


if __name__ == "__main__":
    main()
