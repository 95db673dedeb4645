"""Summarize py-spy's raw (collapsed) stacks: the busiest threads and functions.

    .venv/bin/python benchmarks/profile_summary.py PROFILE.txt [--top 30] [--only TEXT]

Reads what `--profile-dir` of bench_dispatch / bench_relay writes (py-spy record
--format raw --threads). `--only` keeps the stacks containing TEXT (a thread name, a
function). Prints each thread's share of the samples, then the functions with the most
samples on their own (self) and anywhere on the stack (inclusive).
"""

import argparse
import re
from collections import Counter
from pathlib import Path

SITE = re.compile(r"\(/.*?/site-packages/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--only", help="keep the stacks that contain this text")
    args = parser.parse_args()

    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or (args.only and args.only not in stack):
            continue
        count = int(count_text)
        total += count
        thread, *frames = stack.split(";")
        threads[thread] += count
        frames = [SITE.sub("(", frame) for frame in frames]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if not total:
        raise SystemExit("no samples")
    print(f"{total} samples")
    for title, counter in (("threads", threads), ("self", own), ("inclusive", anywhere)):
        print(f"--- {title}")
        for name, count in counter.most_common(args.top):
            print(f"{count / total:6.1%}  {name}")


if __name__ == "__main__":
    main()
