"""A service's `protocol` and `protocol_options` through the API (SPEC §11)."""

import httpx
import pytest
from sqlalchemy.orm import Session

from gateway.db import make_engine
from gateway.dispatch.protocols.oip_v2 import OipV2Adapter
from gateway.dispatch.protocols.recoghub_v1 import RECOGHUB
from gateway.registry.service import get_service, service_target
from tests.builders import admin_headers, bearer, register_team

SERVICES = "/api/v1/services"
TRITON: dict[str, object] = {"model": "densenet_onnx", "output": "fc6_1", "top_k": 3}


def test_protocol_options_are_stored_shown_and_changed(
    api: httpx.Client, database_url: str
) -> None:
    team = register_team(api, ["http://127.0.0.1:9"], protocol="oip-v2", protocol_options=TRITON)
    shown = api.get(f"{SERVICES}/{team.service_guid}", headers=bearer(team.api_key)).json()
    assert (shown["protocol"], shown["protocol_options"]) == ("oip-v2", TRITON)

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            target = service_target(get_service(session, guid=team.service_guid))
        assert isinstance(target.adapter, OipV2Adapter)
        assert target.adapter.options.top_k == 3

        probabilities = {"model": "m", "output_format": "probabilities", "labels": [" a ", "b"]}
        r = api.patch(
            f"{SERVICES}/{team.service_guid}",
            json={"protocol_options": probabilities},
            headers=bearer(team.api_key),
        )
        assert r.status_code == 200, r.text
        assert r.json()["protocol_options"] == {**probabilities, "labels": ["a", "b"]}

        r = api.patch(
            f"{SERVICES}/{team.service_guid}",
            json={"protocol": "torchserve", "protocol_options": {"model": "resnet-18"}},
            headers=admin_headers(),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["protocol"], r.json()["protocol_options"]) == (
            "torchserve",
            {"model": "resnet-18"},
        )

        # Back to the hub's own protocol: options it has no use for are dropped.
        r = api.patch(
            f"{SERVICES}/{team.service_guid}", json={"protocol": "v1"}, headers=admin_headers()
        )
        assert r.status_code == 200, r.text
        assert (r.json()["protocol"], r.json()["protocol_options"]) == ("recoghub-v1", {})
        with Session(engine) as session:
            target = service_target(get_service(session, guid=team.service_guid))
        assert target.adapter is RECOGHUB
    finally:
        engine.dispose()

    listed = api.get(SERVICES, headers=admin_headers()).json()
    assert [(s["protocol"], s["protocol_options"]) for s in listed] == [("recoghub-v1", {})]


@pytest.mark.parametrize(
    ("service", "needle"),
    [
        ({"protocol": "oip-v2"}, "protocol_options.model is missing: protocol oip-v2 needs"),
        (
            {"protocol": "torchserve", "protocol_options": {"top_k": 3}},
            "protocol_options.model is missing: protocol torchserve needs",
        ),
        (
            {"protocol": "oip-v2", "protocol_options": {"model": "m", "output_format": "json"}},
            "protocol_options.output_format: Input should be 'classification', "
            "'result_string' or 'probabilities'",
        ),
        (
            {
                "protocol": "oip-v2",
                "protocol_options": {"model": "m", "output_format": "probabilities"},
            },
            "protocol_options.labels is missing: output_format probabilities needs",
        ),
        (
            {"protocol_options": {"model": "m"}},
            "protocol recoghub-v1 does not use protocol_options model",
        ),
        (
            {"protocol": "torchserve", "protocol_options": {"model": "m", "labels": ["a"]}},
            "protocol torchserve does not use protocol_options labels",
        ),
        ({"protocol": "oip-v2", "protocol_options": {"model": "a/../b"}}, "protocol_options.model"),
        ({"protocol": "oip-v2", "protocol_options": {"model": "m", "top_k": 0}}, "top_k"),
        ({"protocol": "oip-v2", "protocol_options": {"model": "m", "gpu": 1}}, "gpu"),
        ({"protocol": "grpc"}, "protocol"),
    ],
)
def test_options_that_do_not_fit_are_422_saying_what_is_missing(
    api: httpx.Client, service: dict[str, object], needle: str
) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    body = {"provider_guid": team.provider_guid, "name": "svc", "endpoints": ["http://a:1"]}

    created = api.post(SERVICES, json={**body, **service}, headers=admin_headers())
    changed = api.patch(f"{SERVICES}/{team.service_guid}", json=service, headers=admin_headers())

    for r in (created, changed):
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_input"
        assert needle in r.json()["detail"], r.json()["detail"]
    shown = api.get(f"{SERVICES}/{team.service_guid}", headers=admin_headers()).json()
    assert (shown["protocol"], shown["protocol_options"]) == ("recoghub-v1", {})
