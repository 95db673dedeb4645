"""Schemathesis against a live hub: no server error, no answer that breaks the schema.

A bounded run (a few cases of valid and of invalid input an operation, a few hundred in
all) with the admin token and again with a team's API key, on a hub with a seeded team
whose recognizer is a sample one on 127.0.0.1. Nothing is sent anywhere else: the hub's
worker is off (a run the fuzzer queues never dispatches), relay and check go to the
seeded service only, and dataset paths on the hub host are kept inside the test's
directory.

(schemathesis' own pytest plugin cannot run a schema from a fixture under pytest 9, so
each operation gets a Hypothesis test here, built from `operation.as_strategy()`.)
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.builders import ADMIN_TOKEN, hub_settings, register_team
from tests.servers import live_server

RELAYED = ("/api/v1/services/{guid}/recognize", "/api/v1/services/{guid}/check")
# Every operation (51) is called by each caller with valid and with invalid input; four
# cases of each (about 400 calls a caller) were eight until the suite had to fit in
# ten minutes: the derandomized cases are the same every run, and the wider search is
# RECOGHUB_FUZZ_RANDOM's.
CASES_PER_OPERATION_AND_MODE = 4
# What the hub answers, held against its schema. Not checked: how strictly it reads its
# input (schemathesis' positive_data_acceptance / negative_data_rejection), since the
# schema does not spell out every rule (an endpoint URL's, a tsv import's columns).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass
class FuzzedHub:
    url: str
    service_guid: str
    api_key: str
    sources: Path
    calls: list[str] = field(default_factory=list)


@pytest.fixture
def fuzzed_hub(tmp_path: Path) -> Iterator[FuzzedHub]:
    from gateway.app import create_app
    from sample_recognizer.app import create_recognizer_app
    from sample_recognizer.config import RecognizerConfig

    settings_ = hub_settings(
        f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "data", embedded_worker=False
    )
    with (
        live_server(create_recognizer_app(RecognizerConfig())) as recognizer,
        live_server(create_app(settings_)) as hub,
    ):
        with httpx.Client(base_url=hub.url, timeout=10) as client:
            team = register_team(client, [recognizer.url])
        yield FuzzedHub(hub.url, team.service_guid, team.api_key, tmp_path / "sources")


def _confined(case: Any, hub: FuzzedHub) -> None:
    """Keep a dataset import's paths inside the test's directory."""
    if case.operation.path == "/api/v1/datasets" and isinstance(case.body, dict):
        for key in ("path", "truth"):
            if isinstance(case.body.get(key), str):
                case.body[key] = str(hub.sources / case.body[key].replace("/", "_")[:50])


@pytest.mark.parametrize("caller", ["organizer", "team"])
def test_the_hub_answers_as_its_schema_says(fuzzed_hub: FuzzedHub, caller: str) -> None:
    token = ADMIN_TOKEN if caller == "organizer" else fuzzed_hub.api_key
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{fuzzed_hub.url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        fixed = {"guid": fuzzed_hub.service_guid} if operation.path in RELAYED else None
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode, path_parameters=fixed))
            @settings(
                max_examples=CASES_PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                # The same cases every run, so that CI cannot fail on a case no one has
                # seen; RECOGHUB_FUZZ_RANDOM=1 explores new ones (how the last two
                # undocumented 400s were found).
                derandomize=not os.environ.get("RECOGHUB_FUZZ_RANDOM"),
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                _confined(case, fuzzed_hub)
                fuzzed_hub.calls.append(case.operation.label)
                case.call_and_validate(headers=auth, checks=CHECKS)

            try:
                call()
            except Unsatisfiable:
                pass  # no input to get wrong (ping, metrics): nothing negative to send
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    assert 200 <= len(fuzzed_hub.calls) <= 1000, len(fuzzed_hub.calls)
