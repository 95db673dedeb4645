"""The text forms of a run's figures: results as JSON lines or CSV (streamed, in
batches), and CSV of any list of flat rows (leaderboards, timelines).

CSV cells: None is empty; a result's tags are `tag:score;...` (the result-string
grammar), its labels `label;...`; timestamps ISO 8601 with `Z`.

Every CSV the hub writes goes through `csv_cells`, which neutralises formulas (SPEC §9,
OWASP's "CSV injection"): a text cell that begins with `=`, `+`, `-`, `@`, tab or
carriage return gets a `'` in front, so a spreadsheet shows it as text instead of
running it. Team names, service names, tags, raw answers, labels and error details are
all text. Numbers the hub computed itself (ranks, scores, latencies, counts) are written
as they are: Python writes an int or a float as a plain number (`-0.5`, `1e-05`), which
a spreadsheet reads as a number and never as a formula, and a team cannot put text in
those columns.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from gateway.errors import OUTCOMES
from gateway.runs.progress import ResultRow
from gateway.runs.schemas import RESULT_COLUMNS
from gateway.wire import as_utc

CSV_MEDIA = "text/csv; charset=utf-8"


# What a spreadsheet may take for the start of a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """One CSV cell: None as empty, text that could run as a formula neutralised with
    `'`, numbers as they are (see the module doc)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_cells(values: Iterable[object]) -> list[object]:
    """A CSV row as the hub writes every one (`csv_cell` of each value)."""
    return [csv_cell(v) for v in values]


def _csv_line(writer: Any, buffer: io.StringIO, values: Iterable[object]) -> str:
    writer.writerow(csv_cells(values))
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """A header of `columns` and one line per row (a column a row lacks is empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(csv_cells(columns))
    writer.writerows(csv_cells(r.get(c) for c in columns) for r in rows)
    return buffer.getvalue()


def leaderboard_csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row flattened to `LEADERBOARD_COLUMNS`."""
    flat = dict(row)
    flat.update({f"latency_{k}_ms": v for k, v in (row.get("latency_ms") or {}).items()})
    flat.update({name: (row.get("outcomes") or {}).get(name, 0) for name in OUTCOMES})
    if isinstance(row.get("provisional"), bool):
        flat["provisional"] = "true" if row["provisional"] else "false"
    return flat


def _result_dict(row: ResultRow) -> dict[str, Any]:
    d: dict[str, Any] = {
        "key": row.key,
        "outcome": row.outcome,
        "attempts": row.attempts,
        "latency_ms": row.latency_ms,
        "raw": row.raw,
        "tags": [{"tag": t["tag"], "score": t["score"]} for t in row.tags],
        "true_rank": row.true_rank,
    }
    if row.service_guid is None:
        return d
    finished = row.finished_at
    return {
        "service_guid": row.service_guid,
        **d,
        "labels": row.labels,
        "detail": row.detail,
        "request_id": row.request_id,
        "finished_at": iso(finished) if finished else None,
    }


def jsonl_lines(rows: Iterator[ResultRow]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(_result_dict(row), ensure_ascii=False) + "\n"


def csv_lines(
    rows: Iterator[ResultRow], columns: tuple[str, ...] = RESULT_COLUMNS
) -> Iterator[str]:
    """CSV with the JSONL columns; tags as `tag:score;...` (the result-string grammar),
    labels as `label;...`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    yield _csv_line(writer, buffer, list(columns))
    for row in rows:
        d = _result_dict(row)
        d["tags"] = "".join(f"{t['tag']}:{t['score']!r};" for t in d["tags"])
        if d.get("labels") is not None:
            d["labels"] = ";".join(d["labels"])
        yield _csv_line(writer, buffer, (d[c] for c in columns))


# Bytes of export text handed to the server at once: a sync generator costs a thread
# hop per item it yields, so lines go out in batches, not one by one.
EXPORT_CHUNK = 64 * 1024


def batched(lines: Iterator[str]) -> Iterator[str]:
    """`lines` joined into pieces of about EXPORT_CHUNK characters."""
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= EXPORT_CHUNK:
            yield "".join(batch)
            batch, size = [], 0
    if batch:
        yield "".join(batch)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with `Z`, as every timestamp on the wire (SPEC §3)."""
    return as_utc(value).isoformat().replace("+00:00", "Z")
