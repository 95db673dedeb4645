"""`GET /metrics`: the instruments of gateway.metrics, open or admin-only by setting."""

from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

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
async def metrics(state: HubStateDep, principal: PrincipalDep) -> Response:
    if state.settings.metrics_require_admin:
        principal.require_admin()
    # `recoghub serve`'s worker child records the runs' instruments (gateway.worker_child).
    child = await state.worker_metrics() if state.worker_metrics is not None else None
    return Response(merged_exposition(child), media_type=CONTENT_TYPE_LATEST)


def merged_exposition(child: bytes | None) -> bytes:
    """This process's instruments, with the worker child's `recoghub_*` ones added in:
    counters and histograms summed, gauges (the worker's loop lag and in-flight limit)
    the child's. The process and Python collectors stay this process's."""
    if not child:
        return bytes(generate_latest())
    families = {family.name: family for family in REGISTRY.collect()}
    for theirs in text_string_to_metric_families(child.decode()):
        if not theirs.name.startswith("recoghub_"):
            continue
        ours = families.get(theirs.name)
        if ours is None or theirs.type == "gauge":
            families[theirs.name] = theirs
            continue
        ours.samples = _summed(ours.samples, theirs.samples)
    return bytes(generate_latest(_Collected(list(families.values()))))


def _summed(ours: list[Sample], theirs: list[Sample]) -> list[Sample]:
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
    for sample in [*ours, *theirs]:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        seen = merged.get(key)
        if seen is None:
            merged[key] = sample
        elif sample.name.endswith("_created"):
            merged[key] = seen._replace(value=min(seen.value, sample.value))
        else:
            merged[key] = seen._replace(value=seen.value + sample.value)
    return list(merged.values())


class _Collected:
    """Metric families already collected, as generate_latest reads a registry."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
