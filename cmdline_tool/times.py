"""Times as a team reads them: the hub sends UTC (ISO 8601); a person plans in local time,
so both are shown (a refused submission's next allowed time, a phase's window)."""

from datetime import UTC, datetime


def local_time(iso: object) -> str:
    """A wire time (UTC ISO 8601) in this machine's local time, with UTC beside it:
    "2026-12-05 10:00:00 CET (09:00:00 UTC)"; "–" when there is none."""
    if not isinstance(iso, str) or not iso:
        return "–"
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    local = at.astimezone()
    utc = at.astimezone(UTC)
    if local.utcoffset() == utc.utcoffset():
        return f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({utc:%Y-%m-%d %H:%M:%S} UTC)"
