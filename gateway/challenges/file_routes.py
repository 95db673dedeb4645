"""The routes of a phase's submissions that take or give files (SPEC §12, §13): `POST
…/submissions` (a JSON `{"service_guid"}` for a live run, or a prediction file as
multipart or a raw body) and `GET …/images` (the phase's images as a streamed zip).

A file is received to <data_dir>/submissions while its bytes are counted (413 past
RECOGHUB_SUBMISSION_MAX_BYTES, the declared length checked first), validated whole in a
thread (422 `file_rejected` naming the line or array: nothing counted), then accepted
within the team's limit and scored in a thread (gateway.challenges.files): 201 with the
scores when they come within RECOGHUB_SUBMISSION_WAIT_S, else 202 with the submission
in state `scoring`, to follow at `…/submissions/{id}`.
"""

import asyncio
import contextlib
import functools
import logging
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from gateway.auth import Principal
from gateway.challenges import closing, file_checks, files, submissions
from gateway.challenges import service as challenges
from gateway.challenges.downloads import check_download, zip_chunks
from gateway.challenges.models import Challenge, ChallengePhase
from gateway.challenges.phase_images import phase_images
from gateway.challenges.schemas import SubmissionCreate, SubmissionRead
from gateway.challenges.visibility import submission_read
from gateway.deps import HubStateDep, PrincipalDep
from gateway.errors import InvalidInput, PayloadTooLarge
from gateway.openapi import errors
from gateway.state import HubState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/challenges", tags=["challenges"])

_JSON = "application/json"
_MULTIPART = "multipart/form-data"
_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            _JSON: {"schema": SubmissionCreate.model_json_schema()},
            _MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": ["file", "format"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "format": {
                            "type": "string",
                            "enum": ["recoghub-tsv", "ilsvrc", "isc-matching", "isc-descriptors"],
                        },
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _resolve(
    state: HubState, principal: Principal, slug: str, name: str
) -> tuple[Challenge, ChallengePhase]:
    with state.sessions() as session:
        challenge = challenges.get_challenge_for(session, principal=principal, slug=slug)
        phase = challenges.get_phase(challenge, name=name)
        closing.refresh(session, challenge=challenge, phase=phase)
        _ = list(challenge.enrolled)  # loaded: read after the session is gone
        session.expunge_all()
        return challenge, phase


def _read(
    state: HubState, principal: Principal, slug: str, name: str, sub_id: int
) -> SubmissionRead:
    with state.sessions() as session:
        challenge = challenges.get_challenge_for(session, principal=principal, slug=slug)
        phase = challenges.get_phase(challenge, name=name)
        sub = submissions.get_submission(
            session, principal=principal, phase=phase, submission_id=sub_id
        )
        return submission_read(
            session, challenge=challenge, phase=phase, principal=principal, sub=sub
        )


def _counted(receive: Receive, limit: int) -> Receive:
    """`receive`, refusing (413) once the body passes `limit` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(_too_large(limit))
        return message

    return counted


def _too_large(limit: int, declared: int | None = None) -> str:
    size = f" ({declared} bytes)" if declared is not None else ""
    return (
        f"the prediction file{size} is over the hub's limit of {limit} bytes "
        "(RECOGHUB_SUBMISSION_MAX_BYTES)"
    )


async def _receive_file(
    request: Request, *, path: Path, limit: int, format: str | None
) -> tuple[int, str | None]:
    """The body's file written to `path`; returns (its size, the format it names)."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit, int(declared)))
    counted = Request(request.scope, _counted(request.receive, limit))
    if _media_type(request) == _MULTIPART:
        form = await counted.form(max_files=1, max_fields=4)
        try:
            upload = form.get("file")
            named = form.get("format")
            if not isinstance(upload, UploadFile):
                raise InvalidInput("file: the multipart body has no `file` part")
            await run_in_threadpool(_copy, upload, path)
            size = path.stat().st_size
        finally:
            await form.close()
        return size, named if isinstance(named, str) else format
    size = 0
    with path.open("wb") as out:
        async for chunk in counted.stream():
            size += len(chunk)
            await run_in_threadpool(out.write, chunk)
    return size, format


def _copy(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)


def _check_and_accept(
    state: HubState, *, phase: ChallengePhase, provider_id: int, format: str, path: Path, size: int
) -> tuple[int, Any]:
    with state.sessions() as session:
        images = phase_images(session, phase=phase)
        answers = file_checks.validate_file(
            path, format=format, images=images, phase=phase, settings=state.settings
        )
        phase = session.merge(phase)
        sub = files.accept_file(
            session, phase=phase, provider_id=provider_id, format=format, upload=path, size=size
        )
        return sub.id, answers


@router.post(
    "/{slug}/phases/{phase}/submissions",
    status_code=201,
    openapi_extra=_SUBMIT_BODY,
    responses={
        202: {"model": SubmissionRead, "description": "A file accepted, still `scoring`."},
        **errors(400, 401, 403, 404, 409, 413, 422, 429),
    },
)
async def submit(
    slug: str,
    phase: str,
    request: Request,
    response: Response,
    state: HubStateDep,
    principal: PrincipalDep,
    fmt: Annotated[
        str | None, Query(alias="format", max_length=40, description="A raw file's format.")
    ] = None,
) -> SubmissionRead:
    """A live run (JSON `{"service_guid"}`) or a prediction file (multipart `file` +
    `format`, or the raw body with `?format=`): 429 `quota_exceeded` past the limit, 409
    `phase_not_open` / `phase_closed` outside the window, 422 `file_rejected` with the
    line or array for a file that cannot count, 202 while a file is still scoring."""
    principal.require_caller()
    if _media_type(request) == _JSON:
        try:
            data = SubmissionCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        return await run_in_threadpool(_submit_live, state, principal, slug, phase, data)
    challenge, found = await run_in_threadpool(_resolve, state, principal, slug, phase)
    provider_id = files.check_offline(principal=principal, challenge=challenge, phase=found)
    settings = state.settings
    path = files.new_upload(settings)
    try:
        size, named = await _receive_file(
            request, path=path, limit=settings.submission_max_bytes, format=fmt
        )
        format = file_checks.require_file_format(named)
        sub_id, answers = await run_in_threadpool(
            functools.partial(
                _check_and_accept,
                state,
                phase=found,
                provider_id=provider_id,
                format=format,
                path=path,
                size=size,
            )
        )
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    scoring = asyncio.get_running_loop().run_in_executor(
        None,
        functools.partial(
            files.score_file,
            state.sessions,
            settings=settings,
            submission_id=sub_id,
            answers=answers,
        ),
    )
    try:
        await asyncio.wait_for(asyncio.shield(scoring), timeout=settings.submission_wait_s)
    except TimeoutError:  # 202: it goes on; a failure is logged (scored again at start)
        scoring.add_done_callback(functools.partial(_log_failure, sub_id))
    except Exception:  # accepted all the same: it stays `scoring`, scored again at start
        log.exception("scoring submission %s failed", sub_id)
    read = await run_in_threadpool(_read, state, principal, slug, phase, sub_id)
    if read.state == "scoring":
        response.status_code = 202
    return read


def _log_failure(sub_id: int, done: "asyncio.Future[None]") -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("scoring submission %s failed", sub_id, exc_info=done.exception())


def _submit_live(
    state: HubState, principal: Principal, slug: str, name: str, data: SubmissionCreate
) -> SubmissionRead:
    with state.sessions() as session:
        challenge = challenges.get_challenge_for(session, principal=principal, slug=slug)
        phase = challenges.get_phase(challenge, name=name)
        closing.refresh(session, challenge=challenge, phase=phase)
        made = submissions.submit_live(
            session,
            settings=state.settings,
            principal=principal,
            challenge=challenge,
            phase=phase,
            service_guid=data.service_guid,
        )
        return submission_read(
            session, challenge=challenge, phase=phase, principal=principal, sub=made
        )


@router.get(
    "/{slug}/phases/{phase}/images",
    responses={
        200: {
            "description": "A zip of the phase's images, images.csv and labels.txt.",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(401, 403, 404, 409),
    },
)
def download_images(
    slug: str, phase: str, state: HubStateDep, principal: PrincipalDep
) -> StreamingResponse:
    """The phase's images named by opaque ids, with `images.csv` (`image_id,file`) and
    `labels.txt`, streamed; for an open offline or both phase, to enrolled teams and the
    organizer. Never keys, labels of images or the split."""
    challenge, found = _resolve(state, principal, slug, phase)
    check_download(principal=principal, challenge=challenge, phase=found)
    with state.sessions() as session:
        images = phase_images(session, phase=found)
    return StreamingResponse(
        zip_chunks(images, data_dir=Path(state.settings.data_dir)),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{phase}-images.zip"'},
    )
