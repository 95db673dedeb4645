"""The long-lived resources of a running hub, built by the app's lifespan."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Settings
from gateway.relay.target_cache import TargetCache
from gateway.token_bucket import RateLimiter

if TYPE_CHECKING:
    from gateway.dispatch.client import HttpClient
    from gateway.dispatch.dispatcher import Dispatcher
    from gateway.runs.engine.worker import DispatchWorker


@dataclass
class HubState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    http: "HttpClient"
    dispatcher: "Dispatcher"
    # Made on first use by the module that owns each (gateway.relay.service.target_cache,
    # gateway.rate_limit.limiter and admit).
    relay_targets: TargetCache | None = None
    rate_limiters: dict[str, RateLimiter] = field(default_factory=dict)
    # The hash of the organizer's token read from the database, once read.
    stored_admin_digest: str | None = None
    stored_admin_digest_read: bool = False
    # The embedded dispatch worker, while `serve` runs one (its id names the process).
    worker: "DispatchWorker | None" = None
    # The Prometheus text of `recoghub serve`'s worker child (gateway.worker_child).
    worker_metrics: Callable[[], Awaitable[bytes | None]] | None = None
