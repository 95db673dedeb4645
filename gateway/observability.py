"""Prometheus metrics of the hub (`GET /metrics`), open or admin-only by setting."""

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from gateway.deps import HubStateDep, PrincipalDep
from gateway.errors import OUTCOMES
from gateway.openapi import errors, text_response

router = APIRouter(tags=["metrics"])

ATTEMPTS = Counter(
    "recoghub_recognizer_attempts_total",
    "Requests sent to recognizers (each retry counts), by outcome.",
    ["outcome"],
)
ATTEMPT_LATENCY = Histogram(
    "recoghub_recognizer_latency_seconds",
    "Latency of answered recognizer requests, as the hub measured it.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Children bound once: the dispatch hot path only calls .inc()/.observe().
ATTEMPTS_BY_OUTCOME = {outcome: ATTEMPTS.labels(outcome) for outcome in OUTCOMES}


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
