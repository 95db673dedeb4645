"""The down intervals of a run's services as its timeline shows them
(`GET /runs/{id}/timeline`, the dashboard's charts shade them)."""

from datetime import datetime

from gateway.notify.downtimes import Downtime
from gateway.runs.schemas import TimelineDown


def timeline_intervals(
    found: list[Downtime], *, origin: datetime | None, ended: datetime | None
) -> list[TimelineDown]:
    """A service's down intervals as the run's timeline shows them, placed from `origin`;
    one that never came back ends with the run (`ended`), or is open while it goes on."""
    if origin is None:
        return []
    shown = []
    for d in found:
        end = d.up_at or ended
        shown.append(
            TimelineDown(
                start=d.down_at,
                t_s=max(0.0, (d.down_at - origin).total_seconds()),
                end=end,
                end_t_s=None if end is None else max(0.0, (end - origin).total_seconds()),
                came_back=d.up_at is not None,
            )
        )
    return shown
