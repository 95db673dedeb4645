"""SPEC §8 "Memory": peak RSS of a run over 100,000 images vs one over 10,000.

    .venv/bin/python benchmarks/bench_memory.py [--small 10000] [--large 100000]
        [--recognizers 1] [--concurrency 8]

Both datasets (8x8 PNGs, imported with `import_records` by this process) and the
services are prepared first. Then each run is queued and dispatched by a fresh
`recoghub worker` process, stopped with SIGTERM once the run is completed (scored);
its peak RSS is its VmHWM (/proc/<pid>/status) read when the run is completed, so
after scoring; not ru_maxrss, which Linux carries over from the pages the worker shared
with this (much larger) benchmark process between fork and exec. Target: large / small
<= 1.2.
"""

import argparse
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
from hub_setup import BenchHub, bench_hub, worker_env
from processes import load_average, recoghub_command, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--recognizers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8, help="per service")
    parser.add_argument("--postgres", metavar="URL", help="run the hub on this PostgreSQL server")
    args = parser.parse_args()

    with bench_hub("memory", recognizers=args.recognizers, postgres_url=args.postgres) as (
        hub,
        urls,
        workdir,
    ):
        bench(hub, urls, args, workdir)


def bench(hub: BenchHub, urls: list[str], args: argparse.Namespace, workdir: Path) -> None:
    hub.migrate()
    guids = hub.register(urls, concurrency=args.concurrency)
    peaks: dict[int, int] = {}
    datasets: dict[int, int] = {}
    for size in (args.small, args.large):
        started = time.perf_counter()
        datasets[size] = hub.import_images(f"memory-{size}", size, side=8)
        print(f"imported {size} 8x8 PNGs in {time.perf_counter() - started:.1f}s")
    for size, dataset_id in datasets.items():
        started = time.perf_counter()
        run_id = hub.start_run(dataset_id, guids)
        queued = time.perf_counter() - started
        items = size * len(urls)
        print(f"run over {size} images ({items} work items, queued in {queued:.1f}s):")
        peaks[size] = peak = run_in_fresh_worker(hub, run_id, workdir / f"worker-{size}.log")
        print(f"  peak RSS (VmHWM at completion) {peak / 2**20:.1f} MiB")
        print(f"  check: {hub.check_exactly_once(run_id, expected=items)}; {load_average()}")
    small, large = peaks[args.small], peaks[args.large]
    print()
    print(
        f"peak RSS {args.large} / {args.small} images: {large / 2**20:.1f} / {small / 2**20:.1f}"
        f" MiB = {large / small:.3f} (target <= 1.2)"
    )


class RssSampler:
    """RSS of a process every 5 ms from its start until it exits, in a thread: shows when
    the peak that ru_maxrss reports happens."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.started = time.perf_counter()
        self.samples: list[tuple[float, int]] = []
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while True:
            try:
                rss = self.process.memory_info().rss
            except psutil.Error:
                return
            self.samples.append((time.perf_counter() - self.started, rss))
            time.sleep(0.005)

    def at(self, seconds: float) -> int:
        """The last RSS sampled at or before `seconds` after the start."""
        return max((s for s in self.samples if s[0] <= seconds), default=(0.0, 0))[1]

    def peak(self) -> tuple[float, int]:
        return max(self.samples, key=lambda s: s[1], default=(0.0, 0))


def vm_hwm(pid: int) -> int:
    """The peak RSS in bytes of the process's own memory since its exec (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def run_in_fresh_worker(hub: BenchHub, run_id: int, log_path: Path) -> int:
    """Dispatch the queued run with a new `recoghub worker` and print its RSS over time;
    returns its peak RSS in bytes: VmHWM read once the run is completed."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*recoghub_command(), "worker", "--log-level", "warning"],
            env=worker_env(hub.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        reaped = False
        try:
            rss = RssSampler(proc.pid)
            deadline = time.monotonic() + 600
            while (run := hub.run_state(run_id)).state != "completed":
                if run.state in ("failed", "cancelled") or proc.poll() is not None:
                    raise RuntimeError(f"run {run.state}, worker {proc.poll()}:\n{tail(log_path)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run still {run.state} after 600s")
                time.sleep(0.05)
            completed = time.perf_counter() - rss.started
            high_water = vm_hwm(proc.pid)
            proc.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(proc.pid, 0)
            reaped = True
            proc.returncode = os.waitstatus_to_exitcode(status)
            rss.thread.join()
            peak_at, peak = rss.peak()
            marks = ", ".join(f"{rss.at(completed * q / 4) / 2**20:.1f}" for q in (1, 2, 3))
            print(
                f"  worker RSS at 1/4, 1/2, 3/4 of the run: {marks} MiB; completed after"
                f" {completed:.1f}s; highest sample {peak / 2**20:.1f} MiB at {peak_at:.2f}s"
            )
            # ru_maxrss (KiB) also counts the pages the worker shared with this process
            # between fork and exec: the kernel keeps that high-water mark across exec.
            print(
                f"  ru_maxrss {usage.ru_maxrss / 1024:.1f} MiB (counts this process's RSS at fork)"
            )
            return high_water
        finally:
            if not reaped and proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
