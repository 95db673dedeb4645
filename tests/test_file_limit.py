"""A hub process raises its file limit at start and keeps its caps below it (SPEC §9,
gateway.file_limit). The processes themselves: tests/cli/test_listener_processes.py."""

import logging
import resource
from collections.abc import Iterator

import pytest

from gateway.config import Settings
from gateway.file_limit import RESERVED_FDS, FileLimitError, fit_caps, raise_file_limit

DEFAULTS = Settings()


def test_caps_that_fit_are_kept() -> None:
    limit = DEFAULTS.listen_max_connections + DEFAULTS.max_connections + RESERVED_FDS
    assert fit_caps(DEFAULTS, file_limit=limit, listening=True) is DEFAULTS


def test_a_default_listener_cap_is_lowered_to_fit(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.file_limit"):
        fitted = fit_caps(DEFAULTS, file_limit=1024, listening=True)
    assert fitted.listen_max_connections == 1024 - DEFAULTS.max_connections - RESERVED_FDS
    assert fitted.listen_max_connections + fitted.max_connections + RESERVED_FDS <= 1024
    assert "RECOGHUB_LISTEN_MAX_CONNECTIONS lowered from 4096 to 256" in caplog.text


def test_a_cap_the_organizer_set_is_refused_not_changed() -> None:
    chosen = Settings(listen_max_connections=4096)
    with pytest.raises(FileLimitError) as refused:
        fit_caps(chosen, file_limit=1024, listening=True)
    message = str(refused.value)
    assert "RECOGHUB_LISTEN_MAX_CONNECTIONS (4096) + RECOGHUB_MAX_CONNECTIONS (512)" in message
    assert "may open 1024" in message and "LimitNOFILE" in message
    assert "\n" not in message


def test_no_room_left_for_a_listener_is_refused() -> None:
    with pytest.raises(FileLimitError, match="lower RECOGHUB_LISTEN_MAX_CONNECTIONS or"):
        fit_caps(DEFAULTS, file_limit=512 + RESERVED_FDS + 10, listening=True)


def test_a_process_that_does_not_listen_counts_only_its_outgoing_connections() -> None:
    fits = DEFAULTS.max_connections + RESERVED_FDS
    assert fit_caps(DEFAULTS, file_limit=fits, listening=False) is DEFAULTS
    with pytest.raises(FileLimitError) as refused:
        fit_caps(DEFAULTS, file_limit=fits - 1, listening=False)
    assert "LISTEN" not in str(refused.value)
    assert "lower RECOGHUB_MAX_CONNECTIONS" in str(refused.value)


@pytest.fixture
def lowered_soft_limit() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard file limit ({hard}) leaves no room to lower the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_to_the_hard_one(lowered_soft_limit: int) -> None:
    hard = lowered_soft_limit
    in_force = raise_file_limit()
    soft_now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft_now > 256
    if hard != resource.RLIM_INFINITY:
        assert in_force == soft_now == hard
