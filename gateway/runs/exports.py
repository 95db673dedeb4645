"""The text forms of a run's figures: results as JSON lines or CSV (streamed, in
batches), and CSV of any list of flat rows (leaderboards, timelines).

CSV cells: None is empty; a result's tags are `tag:score;...` (the result-string
grammar), its labels `label;...`; timestamps ISO 8601 with `Z`.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from gateway.errors import OUTCOMES
from gateway.runs.progress import ResultRow
from gateway.runs.schemas import RESULT_COLUMNS
from gateway.wire import as_utc

CSV_MEDIA = "text/csv; charset=utf-8"


def _csv_line(writer: Any, buffer: io.StringIO, values: list[object]) -> str:
    writer.writerow(values)
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """A header of `columns` and one line per row (a column a row lacks is empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if r.get(c) is None else r[c] for c in columns] for r in rows)
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
        yield _csv_line(writer, buffer, ["" if d[c] is None else d[c] for c in columns])


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
