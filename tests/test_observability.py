"""`GET /metrics`: Prometheus text, open to anyone or for the organizer only by setting."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import admin_headers, bearer, hub_settings, register_team
from tests.servers import LiveServer, live_server


@pytest.fixture
def admin_only_hub(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    from gateway.app import create_app

    settings = hub_settings(sqlite_url, tmp_path / "data", metrics_require_admin=True)
    with live_server(create_app(settings)) as server:
        yield server


def test_metrics_are_open_by_default_as_prometheus_text(sqlite_hub: LiveServer) -> None:
    r = httpx.get(f"{sqlite_hub.url}/metrics")

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE recoghub_recognizer_attempts_total counter" in r.text
    assert "# TYPE recoghub_recognizer_latency_seconds histogram" in r.text
    assert "# TYPE recoghub_worker_loop_lag_seconds gauge" in r.text
    assert "# TYPE recoghub_worker_in_flight_limit gauge" in r.text


def test_the_dispatch_worker_records_metrics_without_the_web_framework() -> None:
    """`recoghub worker` imports the engine and the instruments, not FastAPI."""
    code = (
        "import sys, gateway.runs.engine.worker, gateway.metrics; "
        "print(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_admin_only_metrics_refuse_anyone_else(admin_only_hub: LiveServer) -> None:
    with httpx.Client(base_url=admin_only_hub.url, timeout=30) as client:
        team = register_team(client, ["http://127.0.0.1:1"])
        anonymous = client.get("/metrics")
        provider = client.get("/metrics", headers=bearer(team.api_key))
        organizer = client.get("/metrics", headers=admin_headers())

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    assert provider.status_code == 403
    assert provider.json()["code"] == "forbidden"
    assert organizer.status_code == 200
    assert "recoghub_recognizer_attempts_total" in organizer.text


def test_answered_attempts_tallied_read_as_the_instruments_would_count_them() -> None:
    """The dispatch path tallies answered attempts in plain numbers (`ANSWERED`); every
    read of the registry folds them in first, into the same counts, buckets and sum that
    the Counter and Histogram would hold had each been observed (bounds included)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from gateway.metrics import ANSWERED, LATENCY_BUCKETS

    reference = CollectorRegistry()
    answered = Counter("answered", "", registry=reference)
    latency = Histogram("latency_seconds", "", buckets=LATENCY_BUCKETS, registry=reference)
    before = _samples(generate_latest().decode())
    for seconds in [0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.7, 10.0, 12.5] * 3:
        ANSWERED.add(seconds)
        answered.inc()
        latency.observe(seconds)
    after = _samples(generate_latest().decode())
    expected = _samples(generate_latest(reference).decode())

    def added(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    assert added('recoghub_recognizer_attempts_total{outcome="ok"}') == expected["answered_total"]
    for sample, value in expected.items():
        if sample.startswith("latency_seconds_") and "created" not in sample:
            ours = sample.replace("latency_seconds_", "recoghub_recognizer_latency_seconds_")
            assert added(ours) == pytest.approx(value), sample


def _samples(exposition: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in exposition.splitlines())
        if name and not name.startswith("#")
    }
