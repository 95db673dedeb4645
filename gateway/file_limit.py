"""The file limit of a hub process (SPEC §9).

Every connection, database connection and image being read is a file descriptor, and
the soft `RLIMIT_NOFILE` a process starts with is often 1,024 (systemd's default)
although its hard limit is far higher. At start, `recoghub serve` and `recoghub worker`
raise their soft limit to the hard one, then check that their caps fit below it: the
listener's connections in all (`RECOGHUB_LISTEN_MAX_CONNECTIONS`, when the process
listens), its outgoing connections to recognizers (`RECOGHUB_MAX_CONNECTIONS`) and
`RESERVED_FDS` for the database pool, images, logs and the listening sockets.

When they do not fit, a listener cap left at its default is lowered to fit (one log
line says so); a cap the organizer set is never changed behind their back: the process
refuses to start with one line naming the settings and the limit.
"""

import logging
import resource

from gateway.config import Settings

# Database pool, images being read, log files, listening sockets, the event loop's own.
RESERVED_FDS = 256
# Below this many connections a listener is not worth starting: refuse instead.
MIN_LISTEN_CONNECTIONS = 64
# The soft limit asked for when the hard limit is unlimited (Linux refuses infinity).
UNLIMITED_TARGET = 1024 * 1024

logger = logging.getLogger(__name__)


class FileLimitError(ValueError):
    """The caps do not fit below the file limit; the message names what to change."""


def raise_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            # Kept as it is; the caps are then checked against what we have.
            logger.warning("cannot raise the file limit from %d to %d: %s", soft, target, exc)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft


def fit_caps(settings: Settings, *, file_limit: int, listening: bool) -> Settings:
    """`settings`, with a default listener cap lowered if needed so that the caps fit
    below `file_limit`; raises FileLimitError when they cannot."""
    listener = settings.listen_max_connections if listening else 0
    outgoing = settings.max_connections
    need = listener + outgoing + RESERVED_FDS
    if need <= file_limit:
        return settings
    room = file_limit - outgoing - RESERVED_FDS
    chosen = settings.model_fields_set
    if listening and "listen_max_connections" not in chosen and room >= MIN_LISTEN_CONNECTIONS:
        logger.warning(
            "RECOGHUB_LISTEN_MAX_CONNECTIONS lowered from %d to %d to fit the file limit %d",
            listener,
            room,
            file_limit,
        )
        return settings.model_copy(update={"listen_max_connections": room})
    named = "RECOGHUB_MAX_CONNECTIONS"
    terms = f"RECOGHUB_MAX_CONNECTIONS ({outgoing})"
    if listening:
        named = f"RECOGHUB_LISTEN_MAX_CONNECTIONS or {named}"
        terms = f"RECOGHUB_LISTEN_MAX_CONNECTIONS ({listener}) + {terms}"
    raise FileLimitError(
        f"{terms} + {RESERVED_FDS} reserved need {need} open files, but this process may "
        f"open {file_limit}: lower {named}, or raise the hard file limit "
        "(LimitNOFILE= in the systemd unit, ulimits nofile in compose, ulimit -Hn)"
    )


def prepare_file_limit(settings: Settings, *, listening: bool) -> Settings:
    """Raise this process's file limit and fit the caps below it (see `fit_caps`)."""
    return fit_caps(settings, file_limit=raise_file_limit(), listening=listening)
