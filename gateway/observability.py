"""`GET /metrics`: the instruments of gateway.metrics, open or admin-only by setting."""

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import HubStateDep, PrincipalDep
from gateway.openapi import errors, text_response

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        **text_response("Prometheus text exposition format.", "text/plain"),
        **errors(
            401,
            403,
            described={
                401: "RECOGHUB_METRICS_REQUIRE_ADMIN is set and the token is missing or unknown.",
                403: "RECOGHUB_METRICS_REQUIRE_ADMIN is set and the token is not the admin's.",
            },
        ),
    },
)
def metrics(state: HubStateDep, principal: PrincipalDep) -> Response:
    if state.settings.metrics_require_admin:
        principal.require_admin()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
