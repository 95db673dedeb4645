"""API shapes of the relay (`recognize`) and of `check`; the team CLI relies on them."""

from typing import Self

from pydantic import BaseModel, Field

from gateway.dispatch.answers import Answer, Attempt
from gateway.protocol.result_string import Tag


class TagRead(BaseModel):
    tag: str
    score: float

    @classmethod
    def of(cls, tag: Tag) -> Self:
        return cls(tag=tag.tag, score=tag.score)


class AttemptRead(BaseModel):
    """One try of a request: which instance, what came of it, how long it took."""

    n: int
    instance: str
    outcome: str
    latency_ms: float | None
    status: int | None
    detail: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> Self:
        return cls(
            n=attempt.number,
            instance=attempt.instance,
            outcome=attempt.outcome.value,
            latency_ms=attempt.latency_ms,
            status=attempt.status,
            detail=attempt.detail,
        )


class RecognizeRead(BaseModel):
    """A relayed request that ended `ok` (failures are errors: 502, or 504 on timeout)."""

    request_id: str
    service_guid: str
    outcome: str = "ok"
    instance: str = Field(description="The instance that answered.")
    latency_ms: float = Field(description="Latency of the answering attempt.")
    tags: list[TagRead] = Field(description="Ranked best first (SPEC §2).")
    raw: str = Field(
        description="The answer as sent (first 1024 characters): a result string, or JSON "
        "for oip-v2 and torchserve."
    )
    attempts: list[AttemptRead]

    @classmethod
    def of(cls, answer: Answer, *, service_guid: str) -> Self:
        last = answer.attempts[-1]
        return cls(
            request_id=answer.request_id,
            service_guid=service_guid,
            outcome=answer.outcome.value,
            instance=last.instance,
            latency_ms=answer.latency_ms or 0.0,
            tags=[TagRead.of(t) for t in answer.tags],
            raw=answer.raw or "",
            attempts=[AttemptRead.of(a) for a in answer.attempts],
        )


class InstanceCheckRead(BaseModel):
    """One instance as `check` found it: its ping, then one probe image (no retry)."""

    instance: str
    connected: bool = Field(
        default=False,
        description="A recognizer connected out to the hub (SPEC §10), not an HTTP endpoint.",
    )
    reachable: bool = Field(
        description="The health steps answered 200 within 64 KiB (recoghub-v1: GET /ping; "
        "oip-v2: server and model ready; torchserve: /ping healthy) and the probe was not "
        "refused as unsigned (401)."
    )
    ping_ms: float | None
    ping_outcome: str = Field(
        description="Outcome of the ping: ok, timeout, connect_error, http_error or too_large."
    )
    format_ok: bool = Field(
        description="The probe got 200 and an answer that reads as ranked tags."
    )
    outcome: str = Field(description="Outcome of the probe (SPEC §2).")
    latency_ms: float | None = Field(description="Latency of the probe.")
    status: int | None = Field(description="HTTP status of the probe, if any came.")
    request_id: str
    tags: list[TagRead]
    raw: str | None
    detail: str | None = Field(description="What went wrong, for the ping and the probe.")


class CheckRead(BaseModel):
    service_guid: str
    protocol: str = Field(description="How the hub talked to the instances (SPEC §11).")
    ok: bool = Field(description="Every instance is reachable and answered the probe well.")
    instances: list[InstanceCheckRead]
