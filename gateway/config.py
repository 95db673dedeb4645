"""Settings of the hub, read from `RECOGHUB_*` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.dispatch.policy import parse_networks


class Settings(BaseSettings):
    """Every setting of the hub; each is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="RECOGHUB_", extra="ignore")

    database_url: str = "sqlite:///./recoghub.db"
    data_dir: Path = Path("./recoghub-data")
    admin_token: str | None = None
    # The two secrets may instead be read from a file (Docker/Compose secrets, systemd
    # credentials), so they never sit in the environment of `docker inspect`. A file set
    # wins over the plain variable: an image may carry a default database URL.
    database_url_file: Path | None = None
    admin_token_file: Path | None = None
    embedded_worker: bool = True
    # The URL dial-out recognizers reach this hub process at (SPEC §10), told to every
    # recognizer connected to another process; unset, only those given it connect here.
    public_url: str | None = None

    # Relay and check limits.
    max_image_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    relay_open_to_all_providers: bool = False

    # Limits for untrusted callers (SPEC §9).
    max_json_bytes: int = Field(default=1024 * 1024, gt=0)
    # Offline prediction files (SPEC §13): the largest upload, and how long the upload
    # waits for the scores before it answers 202 (the scoring goes on). The delay is for
    # tests only: it holds a file in `scoring` so a test can stop the hub mid-way.
    submission_max_bytes: int = Field(default=1024**3, gt=0)
    submission_wait_s: float = Field(default=5.0, ge=0)
    submission_scoring_delay_s: float = Field(default=0.0, ge=0)
    # A descriptor file is read in a child process killed after this long (libhdf5).
    submission_check_timeout_s: float = Field(default=600.0, gt=0)
    service_concurrency_max: int = Field(default=8, ge=1, le=1024)
    # A team's share as a team (gateway.registry.caps): 32 is an eighth of a worker's
    # RECOGHUB_GLOBAL_CONCURRENCY, so eight teams at their cap still fit in one worker's
    # slots, and four services at the per-service cap.
    provider_concurrency_max: int = Field(default=32, ge=1)
    provider_services_max: int = Field(default=10, ge=1)
    # Token buckets per API key and hub process: refill per second, and burst (0 = off).
    relay_rate: float = Field(default=20.0, ge=0)
    relay_burst: int = Field(default=40, ge=1)
    check_rate: float = Field(default=1.0, ge=0)
    check_burst: int = Field(default=5, ge=1)

    # Dial-out connections (SPEC §10), per hub process. Caps: a service's connections, a
    # provider's over all its services, and all of them (kept well below the default file
    # limit of 1,024, beside the HTTP client's pool).
    dialout_connections_per_service: int = Field(default=16, ge=1)
    dialout_connections_per_provider: int = Field(default=32, ge=1)
    dialout_connections_max: int = Field(default=256, ge=1)
    # Upgrades (each costs an authentication) per presented API key and per client
    # address: token buckets, refill per second and burst (0 rate = no limit).
    connect_rate: float = Field(default=1.0, ge=0)
    connect_burst: int = Field(default=20, ge=1)
    connect_address_rate: float = Field(default=5.0, ge=0)
    connect_address_burst: int = Field(default=50, ge=1)
    # Messages a connection may send a second (a second's worth at once; a message of
    # 16 KiB or more counts once per 16 KiB); past it the hub stops reading it for a
    # while. 0 = no limit.
    dialout_message_rate: float = Field(default=2000.0, ge=0)
    # Results for requests a connection was never sent (or already answered) before the
    # hub closes it (1008).
    dialout_stray_results: int = Field(default=16, ge=0)

    # Dispatch defaults; a run may override timeout and attempts.
    request_timeout_s: float = Field(default=10.0, gt=0)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_s: float = Field(default=0.2, ge=0)
    retry_backoff_max_s: float = Field(default=5.0, ge=0)
    max_connections: int = Field(default=512, gt=0)
    # The library that moves the bytes to recognizers (gateway.dispatch.client): wreq,
    # measured fastest of those that abort a cancelled request (benchmarks/README.md).
    http_client: Literal["aiohttp", "pyreqwest", "wreq"] = "wreq"
    service_concurrency: int = Field(default=4, ge=1)
    global_concurrency: int = Field(default=256, ge=1)
    # Latency fidelity (SPEC §8): while the event loop's p99 lateness passes this many
    # milliseconds, the worker lowers its requests in flight; 0 turns that off.
    timing_bound_ms: float = Field(default=5.0, ge=0)

    # Work-item leases, for workers sharing one PostgreSQL database.
    lease_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(default=5.0, gt=0)
    result_batch_size: int = Field(default=500, ge=1)
    result_flush_s: float = Field(default=0.25, gt=0)

    # The dead-service breaker of runs (SPEC §9); 0 failures turns it off.
    breaker_failures: int = Field(default=10, ge=0)
    breaker_probe_s: float = Field(default=1.0, gt=0)
    breaker_probe_max_s: float = Field(default=60.0, gt=0)
    breaker_give_up_s: float = Field(default=600.0, gt=0)
    # After a dispatching process starts, a dial-out service (no endpoints) gets nothing
    # sent until a recognizer connects to it, at most this long: its recognizers are in
    # their reconnect back-off after the hub's own restart, which is no fault of theirs.
    dialout_grace_s: float = Field(default=60.0, ge=0)

    metrics_require_admin: bool = False

    # Every listener the hub opens (gateway.listening): a connection must send a whole
    # request head within header_timeout_s; past either cap a new connection is closed.
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    listen_max_handshakes: int = Field(default=512, ge=1)
    listen_max_connections: int = Field(default=4096, ge=1)

    # Networks the hub may send to although they are loopback, private, link-local or its
    # own (SPEC §9): comma-separated CIDRs, e.g. "127.0.0.0/8,::1/128" for a local demo.
    endpoint_allow: str = ""

    @field_validator("endpoint_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # refuse a typo at start, not at the first request
        return value

    # Notifications (gateway.notify): the organizer's webhook gets every event (signed
    # under the secret, when one is set); each post ends within notify_timeout_s, a failed
    # one is tried again after notify_retry_s doubling (to 10 min), notify_attempts in all.
    organizer_webhook_url: str | None = None
    organizer_webhook_secret: str | None = None
    notify_timeout_s: float = Field(default=5.0, gt=0, le=60)
    notify_attempts: int = Field(default=8, ge=1, le=50)
    notify_retry_s: float = Field(default=2.0, gt=0)
    notify_poll_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _organizer_webhook(self) -> Self:
        if self.organizer_webhook_url is not None:
            from gateway.notify.urls import checked_webhook_url

            # A typo or a refused address fails at start, not at the first event.
            self.organizer_webhook_url = checked_webhook_url(
                self.organizer_webhook_url,
                allow=self.endpoint_allow,
                field="RECOGHUB_ORGANIZER_WEBHOOK_URL",
            )
        return self

    # Dry runs a provider may start itself on datasets open to teams, in any 24 hours.
    team_dryruns_per_day: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _read_secret_files(self) -> Self:
        if self.database_url_file is not None:
            self.database_url = _read_secret(self.database_url_file, "RECOGHUB_DATABASE_URL_FILE")
        if self.admin_token_file is not None:
            self.admin_token = _read_secret(self.admin_token_file, "RECOGHUB_ADMIN_TOKEN_FILE")
        return self


def _read_secret(path: Path, variable: str) -> str:
    """The file's text without the surrounding whitespace (`echo` adds a newline)."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{variable}: cannot read {path}: {reason}") from None
    if not value:
        raise ValueError(f"{variable}: {path} is empty")
    return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
