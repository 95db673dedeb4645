"""The dispatch engine: one `DispatchWorker` per process sends every run's work items;
its statements run in a recording process of its own.

Nothing outside the engine imports it but the code that starts workers (`gateway.app`,
the CLI): the API's read side works from the tables alone (`gateway.runs.models`).

    worker.py     DispatchWorker: builds the parts below, starts their loops, stops them
    process.py    running a worker: embedded in the hub, or as `recoghub worker`
    surveyor.py   the survey tick: lanes opened and closed, deadlines, idle lanes finished
    claimer.py    claims items for the lanes whose queue runs low
    sender.py     slot shares, and one consumer per leased slot sending one request at a time
    writer.py     the result buffer, written in batches
    heartbeat.py  extends this worker's leases; sending stops before they could lapse
    lanes.py      a lane (one run service as this worker sends it) and the worker's lanes
    images.py     the cache of claimed images' bytes
    timing.py     how late the event loop runs, and the in-flight limit that follows it
    breaker.py    the dead-service breaker; prober.py probes paused services
    deadline.py   a run's deadline: what was not answered is recorded `missed`
    store.py      the worker's statements: its row, the survey, slot leases, item claims
    (gateway/runs/results.py, outside the engine: the typed result record and the
    statements that record results and live scores; scored prediction files use it too)
    threads.py    where statements run (`Database`): two database threads, each
                  statement in a transaction of its own (`DbThreads`: in this process)
    recorder.py   `Recorder`: the same two threads in a recording process of its own
    recording.py  what the writer's batches become there: rows recorded, then scored
                  into the lanes' live scorers; a lane finished with its scorer

How it works (SPEC §4):

- Each open run service is a *lane* with its own queue of claimed items and one
  consumer task per service slot the worker leases; a consumer sends one request at a
  time, so a service never has more requests in flight than the slots leased for it
  across all workers (at most its concurrency). A slow or dead service only occupies
  its own consumers: no lane waits on another.
- A survey tick (every `POLL_S`) starts queued runs, opens and closes lanes, takes this
  worker's fair share of each service's slots (ceil(k / live workers)), hands surplus
  slots back, and scores and closes lanes whose items are all recorded.
- The claimer leases the next items of lanes whose queue runs low, in `seq` order, in one
  transaction for all lanes; buffers grow with a lane's throughput.
- Results are written by one writer in batches (`result_batch_size` rows or every
  `result_flush_s`), one executemany per transaction, each row guarded by this worker's
  lease, so an item is recorded exactly once. A crash loses only unwritten results:
  their items are still leased, and are sent again once their lease is released (at once
  by the next SQLite worker, after `lease_s` on PostgreSQL).
- A heartbeat extends every lease this worker holds; if it cannot, the worker stops
  sending before its leases can expire.
- At a run's deadline its lanes stop and their requests in flight are abandoned (their
  connections closed, so the team is free of them before their slots are reused); what
  was answered is written, the rest recorded `missed`. A lane whose run another tick or
  worker stopped at a deadline it did not know yet (moved earlier) is abandoned too.
- A service that stops answering trips its lane's breaker: the lane pauses (status
  `down`), one worker probes the service and reopens it, or gives up on its items.
- The hub's own faults never count: for `dialout_grace_s` after the worker starts, a
  dial-out service with no recognizer connected gets no slots (its recognizers are in
  their reconnect back-off after the hub's restart), and a request that fails while the
  worker stops (its retries cut short, its connection closed) is not recorded: its item
  is sent again after the restart.
- Once a second the worker measures how late its event loop ran, lowers its requests in
  flight while that passes `timing_bound_ms`, and records it on the runs it was sending:
  a recorded latency is exact to about that much.

Two processes (issue 21): the *sender* (`recoghub worker`, or the worker `recoghub serve`
runs) keeps the engine's logic, its lanes, slots, breaker, survey ticks and HTTP, and
runs no SQL; every statement (`db.hot` / `db.cold`, about twenty call sites, all
module-level functions with keyword arguments) goes to the *recording process*
(`recorder.py`), which owns the database engine and runs each in a transaction on its own
hot or cold thread, as `DbThreads` does in-process for the tests and for in-memory SQLite.
Results cross in batches, as plain tuples, and are scored for the live scores there
(`recording.py`), so neither the database threads nor the scoring take the sender's GIL.
When the recording process dies, the worker stops (`DispatchWorker.run` raises
`RecorderGone`): the embedded worker starts again with a new one, `recoghub worker` exits
with status 1; a killed sender's recording process exits at its socket's end of file.
"""
