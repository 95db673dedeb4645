"""Issue 17 / SPEC §10: one team flooding its dial-out connection beside another team's
dry run; the normal team's throughput and recorded latency, undisturbed vs flooded.

    .venv/bin/python benchmarks/bench_flood.py [--images 1500] [--rounds 2] [--sleep-ms 20]
                                               [--flooders 1]

One `recoghub worker --listen 127.0.0.1:0` process on SQLite (the hub's default
settings), one fast dial-out recognizer (fast_dialout.py, `--sleep-ms` of think time)
for the normal team's service, and a second team's service. Each round runs the normal
team's dry run (a) alone and (b) while `--flooders` clients of the second team
(tests/dialout/flooder.py, in this process) send results for requests never sent as
fast as they can and reconnect at once whenever closed or refused. Printed side by side:
images/s (first claim .. completed), the recorded p50 and p99 latency of the normal
team, the worker's CPU per item, and what the flood got through (connections welcomed,
upgrades refused, results sent). Every run is checked: each image done once, ok, in
one attempt.
"""

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench_dialout import dialout_recognizers, listening_worker, one_run, register_dialout
from hub_setup import bench_hub
from processes import load_average

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' flooder
from tests.dialout.flooder import Flooder  # noqa: E402


def latency(hub: Any, run_id: int) -> tuple[float, float]:
    (row,) = hub.leaderboard(run_id)
    figures = row["latency_ms"]
    return float(figures["p50"]), float(figures["p99"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1500, help="images in the dataset")
    parser.add_argument("--rounds", type=int, default=2, help="undisturbed + flooded pairs")
    parser.add_argument("--sleep-ms", type=float, default=20.0, help="recognizer think time")
    parser.add_argument("--flooders", type=int, default=1, help="flooding clients")
    args = parser.parse_args()

    with bench_hub("flood", recognizers=0) as (hub, _, workdir):
        hub.migrate()
        dataset_id = hub.import_images("flood", args.images)
        (normal_guid, normal_key), (flood_guid, flood_key) = register_dialout(hub, 2)
        print(
            f"setup: {args.images} PNGs, 1 dial-out recognizer (sleep {args.sleep_ms:g} ms),"
            f" {args.flooders} flooder(s) of another team, SQLite, 1 worker with --listen,"
            " default settings"
        )
        rows = []
        with listening_worker(hub, workdir) as (worker, url):
            with dialout_recognizers(url, [(normal_guid, normal_key)], args.sleep_ms):
                for round_no in range(1, args.rounds + 1):
                    for flooded in (False, True):
                        flooders = [
                            Flooder(url, flood_key, flood_guid, max_s=600).start()
                            for _ in range(args.flooders if flooded else 0)
                        ]
                        try:
                            rate, cpu_us, line = one_run(
                                hub, [worker], workdir, dataset_id, [normal_guid], args.images
                            )
                        finally:
                            for flooder in flooders:
                                flooder.stop()
                        run_id = int(line.split()[1].rstrip(":"))
                        p50, p99 = latency(hub, run_id)
                        label = "flooded" if flooded else "alone"
                        print(f"round {round_no} {label:8} {line}")
                        flood = ""
                        if flooders:
                            welcomed = sum(f.welcomed for f in flooders)
                            refused = sum(sum(f.refused.values()) for f in flooders)
                            sent = sum(f.sent for f in flooders)
                            closes: Counter[int | None] = Counter()
                            for flooder in flooders:
                                closes.update(flooder.closes)
                            flood = (
                                f"flood: {welcomed} connections welcomed (closes {dict(closes)}),"
                                f" {refused} upgrades refused, {sent} stray results sent"
                            )
                            print(f"  {flood}")
                        print(f"  {load_average()}")
                        rows.append((round_no, label, rate, p50, p99, cpu_us, flood))
        print()
        print(f"{'round':>5} {'':8} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs':>7}")
        for round_no, label, rate, p50, p99, cpu_us, _ in rows:
            print(f"{round_no:>5} {label:8} {rate:9.0f} {p50:8.1f} {p99:8.1f} {cpu_us:7.0f}")


if __name__ == "__main__":
    main()
