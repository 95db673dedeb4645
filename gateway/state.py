"""The long-lived resources of a running hub, built by the app's lifespan."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Settings

if TYPE_CHECKING:
    import aiohttp

    from gateway.dispatch.dispatcher import Dispatcher


@dataclass
class HubState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    http: "aiohttp.ClientSession"
    dispatcher: "Dispatcher"
    extras: dict[str, object] = field(default_factory=dict)
