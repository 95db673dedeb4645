"""Every change of state of a run's rows, in one package of named transitions:

    runs        a run's state (`Run.state`): queued, running, completed, failed, cancelled
    services    a run service's status (`RunService.status`): pending, ongoing, down,
                passed, failed
    items       a work item's state (`WorkItem.state`): pending, leased, done
    slots       a service slot's lease
    live        a run service's live scores (and each part's, of a split run)

Each transition is a function named for what it does and guarded by the state it leaves,
so that among several workers (and the API) one makes each change, once. The engine, the
API, the breaker and the challenges call these; nothing else writes those columns, and the
SQLite/PostgreSQL differences live here alone (tests/runs/test_layout.py checks both).
The package imports only the tables (and the live tally): the worker imports it.

A run's own transitions are re-exported here: `lifecycle.start_due_runs(...)`.
"""

from gateway.runs.lifecycle import items, live, services, slots
from gateway.runs.lifecycle.runs import (
    cancel,
    complete_emptied_runs,
    complete_run,
    complete_stored,
    fail_run,
    reopen_run,
    resume,
    start_due_runs,
    start_stored,
    stop_due_runs,
)

__all__ = [
    "cancel",
    "complete_emptied_runs",
    "complete_run",
    "complete_stored",
    "fail_run",
    "items",
    "live",
    "reopen_run",
    "resume",
    "services",
    "slots",
    "start_due_runs",
    "start_stored",
    "stop_due_runs",
]
