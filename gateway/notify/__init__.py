"""Teams are told (SPEC §9, issue 20): webhooks for a provider's services and runs.

    models.py     the outbox (events, deliveries) and the recorded down intervals
    downtimes.py  the breaker's transitions, recorded where it changes a status
    events.py     which events there are: derived from the tables, written to the outbox
    phases.py     a challenge phase opened or closed, derived from the challenge tables
    delivery.py   one delivery: signed, bounded, posted; what its answer means
    notifier.py   the task that fills the outbox and drains it, one per hub process
    service.py    a provider's notification URL and secret; the test event
    routes.py     `PATCH /providers/{guid}`, `/notification-secret`, `/notification-test`

Events go through a database outbox, not an in-process queue: an evaluation lasts
days, and an event must survive a hub restart and be sent by one process of several.
The dispatch engine writes nothing but a down interval, in the breaker's own
transaction; everything else is read from the run and challenge tables by the notifier.
"""
