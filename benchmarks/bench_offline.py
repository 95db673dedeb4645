"""SPEC §8 "Offline scoring": prediction files validated and scored by the hub, beside
scikit-learn / numpy doing the same scoring on the same data.

    .venv/bin/python benchmarks/bench_offline.py [--only ilsvrc,isc-matching,isc-descriptors]
        [--images 150000] [--rows 500000] [--queries 10000] [--references 100000] [--dim 256]

Files are generated (seeded) into a temp dir first. Each measurement then runs in a fresh
Python process, so its peak RSS (VmHWM, /proc/self/status) is its own: the hub's
`gateway.offline.submission.evaluate` (validation, parsing, search, per-image results
and scores by the array path of `ServiceScorer`; the results are built a page at a time
and dropped, not stored), and the reference:

- ilsvrc (150,000 lines, 1,000 labels): the lines read into a label matrix, then
  scikit-learn's `top_k_accuracy_score` (k = 1, 5) over chunks of 10,000 rows of a dense
  score matrix (the predictions scored 5..1, the rest 0).
- isc-matching (500,000 rows, 50,000 queries, 1,000,000 references): the rows read with
  the csv module, then scikit-learn's `average_precision_score` scaled to SPEC §6's
  recall (over every true pair): scores are continuous, so no ties and the two agree.
- isc-descriptors (10,000 x 100,000 x 256, k = 10): numpy blocked matrix products
  (|q|^2 - 2 q.r + |r|^2, argpartition, 250 queries a block), then µAP.

Targets: ilsvrc and isc-matching each <= 10 s and < 300 MiB peak RSS; isc-descriptors
<= 60 s. Each line also shows the figure scored, hub and reference: they must agree.
"""

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEED = 20261204


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# The phase: ids and truth, rebuilt the same from the seed in every process.


def ilsvrc_phase(images: int) -> tuple[list[str], list[str], list[list[str]]]:
    rng = np.random.default_rng(SEED)
    labels = [f"n{j:08d}" for j in range(1000)]
    truth = rng.integers(0, 1000, size=images)
    return [f"i{i:07d}" for i in range(images)], labels, [[labels[t]] for t in truth.tolist()]


def matching_phase(queries: int, references: int) -> tuple[list[str], list[str], list[list[str]]]:
    rng = np.random.default_rng(SEED + 1)
    reference_ids = [f"R{j:07d}" for j in range(references)]
    matched = rng.random(queries) < 0.5  # half the queries were copied from a reference
    source = rng.integers(0, references, size=queries)
    truth = [[reference_ids[s]] if m else [] for s, m in zip(source.tolist(), matched, strict=True)]
    return [f"Q{i:06d}" for i in range(queries)], reference_ids, truth


def descriptor_phase(queries: int, references: int) -> tuple[list[str], list[str], list[list[str]]]:
    image_ids = [f"Q{i:06d}" for i in range(queries)]
    reference_ids = [f"R{j:07d}" for j in range(references)]
    # Query i is a noisy copy of reference i (see write_descriptors) for the first half.
    truth = [[reference_ids[i]] if i < queries // 2 else [] for i in range(queries)]
    return image_ids, reference_ids, truth


# Files.


def write_ilsvrc(path: Path, images: int) -> None:
    rng = np.random.default_rng(SEED)
    truth = rng.integers(0, 1000, size=images)  # as ilsvrc_phase draws it
    # Five distinct labels a line (a repeat would make scikit-learn's top-k see ties).
    step = rng.integers(1, 200, size=(images, 1))
    predictions = (rng.integers(0, 1000, size=(images, 1)) + step * np.arange(5)) % 1000
    hit = (rng.random(images) < 0.7) & ~(predictions == truth[:, None]).any(axis=1)
    place = rng.integers(0, 5, size=images)
    predictions[hit, place[hit]] = truth[hit]
    as_index = rng.random(images) < 0.5
    with path.open("w") as out:
        for row, index in zip(predictions.tolist(), as_index.tolist(), strict=True):
            tokens = [str(j + 1) if index else f"n{j:08d}" for j in row]
            out.write(" ".join(tokens) + "\n")


def write_matching(path: Path, rows: int, queries: int, references: int) -> None:
    rng = np.random.default_rng(SEED + 2)
    query_ids, reference_ids, truth = matching_phase(queries, references)
    query = rng.integers(0, queries, size=rows)
    reference = rng.integers(0, references, size=rows)
    for i in range(0, rows, 3):  # a third of the rows name the query's true reference
        if truth[query[i]]:
            reference[i] = int(truth[query[i]][0][1:])
    pair = query.astype(np.int64) * references + reference
    _, first = np.unique(pair, return_index=True)
    keep = np.sort(first)  # no pair twice
    scores = rng.random(rows)
    with path.open("w") as out:
        out.write("query_id,reference_id,score\n")
        for q, r, s in zip(
            query[keep].tolist(), reference[keep].tolist(), scores[keep].tolist(), strict=True
        ):
            out.write(f"{query_ids[q]},{reference_ids[r]},{s!r}\n")


def write_descriptors(path: Path, queries: int, references: int, dim: int) -> None:
    rng = np.random.default_rng(SEED + 3)
    reference = rng.standard_normal((references, dim), dtype=np.float32)
    query = rng.standard_normal((queries, dim), dtype=np.float32)
    half = queries // 2
    query[:half] = reference[:half] + 1.5 * query[:half]  # copies, edited
    image_ids, reference_ids, _ = descriptor_phase(queries, references)
    with path.open("wb") as out:
        np.savez(
            out,
            query_ids=np.array(image_ids),
            query=query,
            reference_ids=np.array(reference_ids),
            reference=reference,
        )


# Measurements, one per process.


def hub(kind: str, path: Path, sizes: dict[str, int]) -> dict[str, Any]:
    from gateway.offline.answers import Catalogue
    from gateway.offline.submission import evaluate

    if kind == "ilsvrc":
        image_ids, labels, truth = ilsvrc_phase(sizes["images"])
        catalogue = Catalogue(image_ids=image_ids, labels=labels)
    elif kind == "isc-matching":
        image_ids, reference_ids, truth = matching_phase(sizes["queries_m"], sizes["references_m"])
        catalogue = Catalogue(image_ids=image_ids, reference_ids=reference_ids)
    else:
        image_ids, reference_ids, truth = descriptor_phase(sizes["queries"], sizes["references"])
        catalogue = Catalogue(image_ids=image_ids, reference_ids=reference_ids)
    before = peak_rss_mib()
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    with path.open("rb") as stream:
        # Every page of per-image results is built, as for storing; here it is dropped.
        scores = evaluate(
            stream, format=kind, catalogue=catalogue, truth=truth, k=10, on_results=len
        )
    seconds = time.perf_counter() - start
    figure = scores["top5"] if kind == "ilsvrc" else scores["micro_ap"]
    extra = {"top1": scores["top1"]} if kind == "ilsvrc" else {}
    return {
        "seconds": seconds,
        "rss_before_mib": before,
        "cpu_before": cpu_before,
        "figure": figure,
        **extra,
    }


def reference(kind: str, path: Path, sizes: dict[str, int]) -> dict[str, Any]:
    if kind == "ilsvrc":
        _, labels, truth = ilsvrc_phase(sizes["images"])
        return _sklearn_ilsvrc(path, labels, truth)
    if kind == "isc-matching":
        return _sklearn_matching(path, sizes)
    return _numpy_descriptors(path, sizes)


def _sklearn_ilsvrc(path: Path, labels: list[str], truth: list[list[str]]) -> dict[str, Any]:
    from sklearn.metrics import top_k_accuracy_score

    label_of = {label: j for j, label in enumerate(labels)}
    y_true = np.array([label_of[t[0]] for t in truth])
    before = peak_rss_mib()
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    predicted = np.full((len(truth), 5), -1, dtype=np.int64)
    with path.open() as lines:
        for i, line in enumerate(lines):
            for place, token in enumerate(line.split()):
                predicted[i, place] = int(token) - 1 if token.isdigit() else label_of[token]
    hits = {1: 0.0, 5: 0.0}
    chunk = 10_000
    for first in range(0, len(truth), chunk):
        rows = predicted[first : first + chunk]
        dense = np.zeros((len(rows), len(labels)))
        for place in range(5):
            valid = rows[:, place] >= 0
            dense[np.nonzero(valid)[0], rows[valid, place]] = 5 - place
        for k in hits:
            hits[k] += top_k_accuracy_score(
                y_true[first : first + chunk],
                dense,
                k=k,
                labels=np.arange(len(labels)),
                normalize=False,
            )
    seconds = time.perf_counter() - start
    n = len(truth)
    return {
        "seconds": seconds,
        "rss_before_mib": before,
        "cpu_before": cpu_before,
        "figure": hits[5] / n,
        "top1": hits[1] / n,
    }


def _sklearn_matching(path: Path, sizes: dict[str, int]) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    _, _, truth = matching_phase(sizes["queries_m"], sizes["references_m"])
    query_ids, _, _ = matching_phase(sizes["queries_m"], 1)
    true_pairs = {(q, t[0]) for q, t in zip(query_ids, truth, strict=True) if t}
    n_gt = len(true_pairs)
    before = peak_rss_mib()
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    correct: list[bool] = []
    scores: list[float] = []
    with path.open(newline="") as rows:
        reader = csv.reader(rows)
        next(reader)
        for query, ref, score in reader:
            correct.append((query, ref) in true_pairs)
            scores.append(float(score))
    positives = sum(correct)
    ap = average_precision_score(np.array(correct), np.array(scores))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rss_before_mib": before,
        "cpu_before": cpu_before,
        "figure": ap * positives / n_gt,
    }


def _numpy_descriptors(path: Path, sizes: dict[str, int]) -> dict[str, Any]:
    before = peak_rss_mib()
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    with np.load(path) as archive:
        query, reference = archive["query"], archive["reference"]
        query_ids, reference_ids = archive["query_ids"], archive["reference_ids"]
    k = 10
    ref_norms = (reference.astype(np.float32) ** 2).sum(axis=1)
    neighbours = np.empty((len(query), k), dtype=np.int64)
    distances = np.empty((len(query), k), dtype=np.float32)
    block_rows = 250  # a 250 x 100,000 float32 distance block is 100 MB
    for first in range(0, len(query), block_rows):
        block = query[first : first + block_rows]
        squared = (block**2).sum(axis=1)[:, None] - 2 * block @ reference.T + ref_norms[None, :]
        part = np.argpartition(squared, k, axis=1)[:, :k]
        picked = np.take_along_axis(squared, part, axis=1)
        order = np.argsort(picked, axis=1)
        neighbours[first : first + block_rows] = np.take_along_axis(part, order, axis=1)
        distances[first : first + block_rows] = np.take_along_axis(picked, order, axis=1)
    # The file lists queries and references in id order, and query i of the first half
    # copies reference i (write_descriptors); the ids are read only as the hub reads them.
    assert len(query_ids) == len(query) and len(reference_ids) == len(reference)
    half = sizes["queries"] // 2
    rows = np.arange(len(query))
    true_ref = np.where(rows < half, rows, -1)
    correct = (neighbours == true_ref[:, None]).ravel()
    score = -np.sqrt(np.maximum(distances, 0)).ravel()
    order = np.lexsort((correct, -score))  # score descending, incorrect first on ties
    flags = correct[order]
    tp = np.cumsum(flags)
    micro_ap = float((tp[flags] / (np.nonzero(flags)[0] + 1)).sum() / half)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rss_before_mib": before,
        "cpu_before": cpu_before,
        "figure": micro_ap,
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_here(args: argparse.Namespace) -> None:
    sizes = json.loads(args.sizes)
    run = hub if args.side == "hub" else reference
    result = run(args.measure, Path(args.file), sizes)
    result["peak_rss_mib"] = peak_rss_mib()
    result["cpu_s"] = cpu_seconds() - result.pop("cpu_before")
    print(json.dumps(result))


def measure(side: str, kind: str, path: Path, sizes: dict[str, int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", kind, "--side", side, "--file", str(path)]
    command += ["--sizes", json.dumps(sizes)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


TARGETS = {
    "ilsvrc": "<= 10 s, < 300 MiB",
    "isc-matching": "<= 10 s, < 300 MiB",
    "isc-descriptors": "<= 60 s",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="ilsvrc,isc-matching,isc-descriptors")
    parser.add_argument("--images", type=int, default=150_000)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--match-queries", type=int, default=50_000)
    parser.add_argument("--match-references", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--references", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure_here(args)
        return
    sizes = {
        "images": args.images,
        "queries_m": args.match_queries,
        "references_m": args.match_references,
        "queries": args.queries,
        "references": args.references,
    }
    kinds = args.only.split(",")
    with tempfile.TemporaryDirectory(prefix="recoghub-bench-offline-") as folder:
        files = {
            "ilsvrc": Path(folder) / "predictions.txt",
            "isc-matching": Path(folder) / "matching.csv",
            "isc-descriptors": Path(folder) / "descriptors.npz",
        }
        if "ilsvrc" in kinds:
            write_ilsvrc(files["ilsvrc"], args.images)
        if "isc-matching" in kinds:
            write_matching(
                files["isc-matching"], args.rows, args.match_queries, args.match_references
            )
        if "isc-descriptors" in kinds:
            write_descriptors(files["isc-descriptors"], args.queries, args.references, args.dim)
        print(
            f"{'format':16} {'side':10} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} "
            f"{'(at start)':>10} {'file MiB':>8}  figure"
        )
        for kind in kinds:
            size = files[kind].stat().st_size / 2**20
            for side, name in (
                ("hub", "hub"),
                ("ref", "sklearn" if kind != "isc-descriptors" else "numpy"),
            ):
                r = measure(side, kind, files[kind], sizes)
                figure = f"{'top5' if kind == 'ilsvrc' else 'µAP'} {r['figure']:.6f}"
                if "top1" in r:
                    figure += f" top1 {r['top1']:.6f}"
                print(
                    f"{kind:16} {name:10} {r['seconds']:8.2f} {r['cpu_s']:7.2f} "
                    f"{r['peak_rss_mib']:9.1f} "
                    f"{r['rss_before_mib']:10.1f} {size:8.1f}  {figure}"
                )
            print(f"{'':16} target     {TARGETS[kind]}")


if __name__ == "__main__":
    main()
