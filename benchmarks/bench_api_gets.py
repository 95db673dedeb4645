"""CPU per GET of the API routes the dispatch benchmark polls during a run.

    .venv/bin/python benchmarks/bench_api_gets.py [--images 5000] [--requests 300]
        [--rounds 1] [--base DIR] [--postgres URL]

`bench_dispatch.py` asks `GET /api/v1/runs/{id}/leaderboard` and `GET /api/v1/runs/{id}`
every 20 ms while a run sends (`hub_serve.ApiPoller`); on a 2-core machine the API
process's CPU per GET is taken from the sender. Here: 8 fast recognizers, `--images`
images, one dry run to completion by `recoghub serve`; then a `recoghub serve
--no-worker` on that database answers `--requests` GETs (after 20 unmeasured) of each
route, one at a time, with the admin token, and its CPU time (user + system, psutil) per
GET is printed, beside `GET /api/v1/ping` (the fixed cost of a request) and a 404 run.

`--base DIR`: a checkout of other code (e.g. `git worktree add /tmp/base main`) served the
same way, alternately with this one, `--rounds` times: before and after side by side on
one database, as the shared machine's load drifts.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import httpx
import psutil
from hub_serve import serve_process
from hub_setup import bench_hub

HERE = Path(__file__).resolve().parent.parent


def routes(run_id: int) -> list[str]:
    return [
        f"/api/v1/runs/{run_id}/leaderboard",
        f"/api/v1/runs/{run_id}",
        "/api/v1/ping",
        "/api/v1/runs/99999",
    ]


def cpu_per_get(pid: int, url: str, token: str, paths: list[str], requests: int) -> list[float]:
    """CPU ms of process `pid` per GET of each path."""
    process = psutil.Process(pid)
    figures = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        for path in paths:
            for _ in range(20):
                client.get(path)
            before = process.cpu_times()
            for _ in range(requests):
                client.get(path)
            after = process.cpu_times()
            used = (after.user + after.system) - (before.user + before.system)
            figures.append(1000 * used / requests)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--base", type=Path, help="other code to serve alternately")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()
    checkouts = [("this", HERE)]
    if args.base is not None:
        checkouts.insert(0, ("base", args.base.resolve()))
    with bench_hub("apigets", recognizers=8, postgres_url=args.postgres) as (hub, urls, workdir):
        hub.migrate()
        dataset = hub.import_images("d", args.images, side=16)
        guids = hub.register(urls)
        with serve_process(hub, log_path=workdir / "run.log") as (serve, _):
            run_id = hub.start_run(dataset, guids)
            hub.wait_run(run_id, workers=[serve], timeout_s=300)
        token = hub.settings.admin_token or ""
        paths = routes(run_id)
        print(f"run {run_id}: 8 services x {args.images} images; CPU ms per GET")
        print(f"{'code':6} " + " ".join(f"{p:>38}" for p in paths))
        for _ in range(args.rounds):
            for name, root in checkouts:
                path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
                env = {"PYTHONPATH": os.pathsep.join(path)}
                log = workdir / f"serve-{name}.log"
                with serve_process(hub, log_path=log, worker=False, extra_env=env) as (proc, url):
                    figures = cpu_per_get(proc.pid, url, token, paths, args.requests)
                print(f"{name:6} " + " ".join(f"{f:38.2f}" for f in figures), flush=True)
                time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
